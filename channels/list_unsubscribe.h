/*
 * list_unsubscribe: which emails carry a List-Unsubscribe header (RFC
 * 2369) with one-click unsubscribe (RFC 8058), and the links in it
 * (docs/channels.md "List-Unsubscribe").
 *
 * An email gets the links when its event has a category, the category is
 * not exempt (HERALD_UNSUBSCRIBE_EXEMPT, transactional and security by
 * default) and its priority is not critical: an event without a category
 * is transactional (docs/interface.md), and nobody may opt out of what
 * must reach them.  The https link is the gateway's
 * <HERALD_UNSUBSCRIBE_URL>/v1/unsubscribe?token=<unsubtoken>, the token
 * naming the user, the category and the channel; the optional mailto link
 * carries the same token as its subject.
 *
 * Both HERALD_UNSUBSCRIBE_SECRET and HERALD_UNSUBSCRIBE_URL set turn the
 * links on, neither leaves them off, one alone is a configuration error.
 * Pure: the caller passes the clock.  mime.c writes the header itself.
 */
#ifndef HERALD_CHANNELS_LIST_UNSUBSCRIBE_H
#define HERALD_CHANNELS_LIST_UNSUBSCRIBE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "delivery.h"
#include "event.h"

#define LIST_UNSUBSCRIBE_URL_MAX        256 /* HERALD_UNSUBSCRIBE_URL, bytes */
#define LIST_UNSUBSCRIBE_EXEMPT_MAX     32  /* categories in HERALD_UNSUBSCRIBE_EXEMPT */
#define LIST_UNSUBSCRIBE_URI_SIZE       768 /* one link, NUL included */
#define LIST_UNSUBSCRIBE_EXEMPT_DEFAULT "transactional,security"
#define LIST_UNSUBSCRIBE_TTL_DEFAULT    "1440h" /* 60 days */

typedef struct list_unsubscribe_config {
    const char *secret; /* HERALD_UNSUBSCRIBE_SECRET; NULL: no links */
    const char *url;    /* HERALD_UNSUBSCRIBE_URL: the gateway's public base URL */
    const char *mailto; /* HERALD_UNSUBSCRIBE_MAILTO; NULL: no mailto link */
    const char *exempt; /* HERALD_UNSUBSCRIBE_EXEMPT: comma-separated categories */
    long ttl_ms;        /* HERALD_UNSUBSCRIBE_TTL: how long a link works */
} list_unsubscribe_config;

typedef struct list_unsubscribe list_unsubscribe;

/* The links of one email; mailto is "" when none is configured. */
typedef struct list_unsubscribe_links {
    char https[LIST_UNSUBSCRIBE_URI_SIZE];
    char mailto[LIST_UNSUBSCRIBE_URI_SIZE];
} list_unsubscribe_links;

/* Config checks of HERALD_UNSUBSCRIBE_URL and HERALD_UNSUBSCRIBE_EXEMPT (config_var.check). */
int list_unsubscribe_check_url(const char *value, char *err, size_t errlen);
int list_unsubscribe_check_exempt(const char *value, char *err, size_t errlen);

/*
 * Builds the policy of c (copied) into *out: NULL when the links are off.
 * -1 with err naming the variable when c is half configured.
 */
int list_unsubscribe_new(const list_unsubscribe_config *c, list_unsubscribe **out, char *err,
                         size_t errlen) __attribute__((warn_unused_result));
void list_unsubscribe_free(list_unsubscribe *lu);

/* Whether an email of category (may be NULL) and priority carries the links. */
bool list_unsubscribe_applies(const list_unsubscribe *lu, const char *category,
                              event_priority priority);

/*
 * The links of user_id's email of category on channel, minted at now_ms:
 * 1 with *out filled, 0 when the email carries none (lu NULL, or it does
 * not apply), -1 with err set when a name cannot go into a token.
 */
int list_unsubscribe_links_for(const list_unsubscribe *lu, const char *user_id,
                               const char *category, event_priority priority,
                               delivery_channel channel, int64_t now_ms,
                               list_unsubscribe_links *out, char *err, size_t errlen)
    __attribute__((warn_unused_result));

#endif
