/*
 * libFuzzer target for the gateway's request-body validators: whatever a
 * client sends, parsing and checking must neither crash, leak nor read out
 * of bounds.  The first input byte chooses the validator, the rest is the
 * body (or the path, for the router).
 */
#include "bodies.h"
#include "event.h"
#include "router.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const int h = 0;
static const router_route routes[] = {
    {"POST", "/v1/events", ROUTER_SCOPE_PUBLISH, &h},
    {"GET", "/v1/events/{event_id}", ROUTER_SCOPE_PUBLISH, &h},
    {"PUT", "/v1/topics/{topic}/subscribers/{user_id}", ROUTER_SCOPE_ADMIN, &h},
    {"PUT", "/v1/templates/{event_type}/{channel}", ROUTER_SCOPE_ADMIN, &h},
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned which = data[0] % 9;
    const char *body = (const char *)data + 1;
    size_t len = size - 1;
    bodies_error e;
    char err[256], field[64];

    if (which == 4) {
        (void)bodies_check_placeholders(body, len, err, sizeof err);
        return 0;
    }
    if (which == 5) {
        char *path = malloc(len + 1);
        if (path == NULL)
            return 0;
        memcpy(path, body, len);
        path[len] = '\0';
        size_t idx;
        router_params p;
        (void)router_match(routes, sizeof routes / sizeof routes[0], "PUT", path, &idx, &p);
        free(path);
        return 0;
    }
    json_t *doc = NULL;
    if (bodies_parse_object(body, len, &doc, &e) != 0)
        return 0;
    switch (which) {
    case 0:
        (void)bodies_check_user(doc, &e);
        break;
    case 1:
        (void)bodies_check_preferences(doc, &e);
        break;
    case 2:
        (void)bodies_check_template(doc, &e);
        break;
    case 6:
        (void)bodies_check_digest_rule(doc, "r", &e);
        break;
    case 7:
        (void)bodies_check_throttle_rule(doc, "r", &e);
        break;
    case 8:
        (void)bodies_check_followup_rule(doc, "r", &e);
        break;
    default: {
        event ev = {0};
        if (event_from_request(doc, &ev, NULL, field, sizeof field, err, sizeof err) == 0) {
            char *wire = NULL;
            size_t wlen = 0;
            strcpy(ev.event_id, "00000000-0000-4000-8000-000000000000");
            if (event_serialize(&ev, &wire, &wlen) == 0)
                free(wire);
        }
        event_free(&ev);
        break;
    }
    }
    json_decref(doc);
    return 0;
}
