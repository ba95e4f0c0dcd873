/*
 * fault: the misbehaviour a test provider is told to show.
 *
 * A failure test scripts the provider instead of waiting for a real outage:
 * added latency (fixed plus jitter), the next N requests or a fraction of
 * them answered with a chosen status (429 with Retry-After, 5xx, 4xx; for
 * SMTP 4xx/5xx at RCPT or at the end of DATA), a hang that holds requests
 * until it is cleared, and dead push tokens.  Settings come from the
 * server's flags at start and from POST /_control at run time as a JSON
 * object; "reset" returns to the start settings.
 *
 * The two kinds differ in what a "scope" is: for FAULT_HTTP the request
 * path, which injection applies to when it starts with "match"; for
 * FAULT_SMTP the protocol stage ("greeting", "rcpt", "data"), compared with
 * "fail_stage" and "hang_stage".  Latency applies to every HTTP request in
 * scope and to the end of DATA in SMTP.
 *
 * Pure logic except for one condition variable that hung SMTP sessions wait
 * on; all functions are thread-safe.
 */
#ifndef PROVIDERS_FAULT_H
#define PROVIDERS_FAULT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

typedef enum {
    FAULT_HTTP,
    FAULT_SMTP,
} fault_kind;

typedef struct fault_settings {
    long latency_ms;
    long latency_jitter_ms; /* a uniform 0..jitter is added to each delay */
    long fail_status;       /* 400..599 */
    long fail_count;        /* the next N requests in scope fail */
    double fail_rate;       /* then each one fails with this probability */
    long retry_after_s;     /* HTTP: Retry-After on injected failures; 0 = none */
    bool hang;
    long dead_status;    /* HTTP: 404 or 410 for a dead token on /push */
    char match[128];     /* HTTP: path prefix; "" = every path */
    char fail_stage[16]; /* SMTP: "rcpt" or "data" */
    char hang_stage[16]; /* SMTP: "greeting", "rcpt" or "data" */
} fault_settings;

typedef struct fault_decision {
    int status;         /* injected failure status, 0 for none */
    long retry_after_s; /* with status: 0 = no Retry-After */
    long delay_ms;      /* answer this much later */
} fault_decision;

typedef struct fault fault;

/* The settings of a well-behaved provider of that kind. */
void fault_settings_defaults(fault_kind kind, fault_settings *s);

/*
 * Validates initial (copied) and the comma-separated dead tokens (may be
 * NULL); returns NULL with err filled naming the bad setting.
 */
fault *fault_new(fault_kind kind, const fault_settings *initial, const char *dead_tokens_csv,
                 char *err, size_t errlen) __attribute__((warn_unused_result));

void fault_free(fault *f);

/*
 * Applies a control request: {"reset":true} first (back to the start
 * settings), then every other field given.  All or nothing: on a bad or
 * unknown field nothing changes, err names it and -1 is returned.
 * *reset (may be NULL) says whether a reset was asked for.
 */
int fault_apply_json(fault *f, const json_t *req, bool *reset, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* The current settings as a new JSON object (caller owns it). */
json_t *fault_to_json(fault *f);

/* Whether a request in scope must be held now. */
bool fault_hanging(fault *f, const char *scope);

/* Waits up to timeout_ms for the hang on scope to be lifted; returns true
 * once it is (or was never) on. */
bool fault_wait_released(fault *f, const char *scope, long timeout_ms);

/* Decides the fate of one request in scope, consuming fail_count. */
void fault_decide(fault *f, const char *scope, fault_decision *out);

/* Whether token is registered as dead; *status gets dead_status. */
bool fault_token_dead(fault *f, const char *token, int *status);

#endif
