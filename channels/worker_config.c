/*
 * worker_config: see worker_config.h.
 */
#include "worker_config.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "list_unsubscribe.h"
#include "mailkey.h"
#include "opsserver.h"
#include "provider.h"
#include "signedtoken.h"

#define F(field) offsetof(worker_config, field)

static const char *const channel_choices[] = {"email", "sms", "push", "inapp", NULL};
const char *const worker_config_providers[] = {"none",   "file", "smtp",  "http",
                                               "twilio", "fcm",  "inbox", NULL};

/* host:port where port 0 (any free port) is allowed, for tests and benchmarks. */
static int check_listen_addr(const char *value, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t len;
    char why[256];
    if (opsserver_parse_addr(value, &ss, &len, why, sizeof why) == 0)
        return 0;
    error_set(err, errlen, "expected host:port (port 0..65535)");
    return -1;
}

/*
 * A CA bundle is read at startup, not at the first send: a path that is
 * wrong, unreadable or not PEM would otherwise only show as TLS failures of
 * every delivery.  libcurl (OpenSSL) takes PEM only, so a DER file or a
 * lone key is refused here too; the first certificate found is enough.
 */
static int check_ca_file(const char *value, char *err, size_t errlen)
{
    static const char marker[] = "-----BEGIN CERTIFICATE-----";
    char line[512];
    bool line_start = true;
    int ret = -1;
    FILE *f = fopen(value, "r");
    if (f == NULL) {
        error_set(err, errlen, "expected a readable PEM file of CA certificates (%s)",
                  strerror(errno));
        return -1;
    }
    /* PEM markers start a line; a longer line arrives in pieces. */
    for (long i = 0; i < 1000000 && fgets(line, sizeof line, f) != NULL; i++) {
        if (line_start && strncmp(line, marker, sizeof marker - 1) == 0) {
            ret = 0;
            break;
        }
        line_start = strchr(line, '\n') != NULL;
    }
    if (ret != 0 && ferror(f))
        error_set(err, errlen, "expected a readable PEM file of CA certificates (%s)",
                  strerror(errno));
    else if (ret != 0)
        error_set(err, errlen, "expected a PEM file with a BEGIN CERTIFICATE block");
    fclose(f);
    return ret;
}

/*
 * A URL a provider will call back: http:// or https://, then a host, with
 * no spaces or control characters (the provider would refuse it, and then
 * every send), and no fragment, since each message's key is added to the
 * query.
 */
static int check_callback_url(const char *value, char *err, size_t errlen)
{
    size_t skip = strncmp(value, "https://", 8) == 0  ? 8
                  : strncmp(value, "http://", 7) == 0 ? 7
                                                      : 0;
    bool ok = skip > 0 && value[skip] != '\0' && value[skip] != '/' && value[skip] != ':';
    for (const unsigned char *c = (const unsigned char *)value; ok && *c; c++)
        ok = *c > ' ' && *c != 0x7f && *c != '#';
    if (ok)
        return 0;
    error_set(err, errlen, "expected an http:// or https:// URL with a host and no fragment");
    return -1;
}

/* Per-channel variables, written out so that each name greps. */
/* clang-format off */
#define PER_CHANNEL(CH, ch, idx, defprov)                                                          \
    {.env = "HERALD_" CH "_PROVIDER", .type = CONFIG_ENUM, .def = defprov,                        \
     .offset = F(provider[idx]), .help = ch " provider", .choices = worker_config_providers},     \
    {.env = "HERALD_" CH "_FALLBACK_PROVIDER", .type = CONFIG_ENUM, .def = "none",                \
     .offset = F(fallback_provider[idx]),                                                          \
     .help = ch " provider used while the primary's circuit breaker is open",                      \
     .choices = worker_config_providers},                                                          \
    {.env = "HERALD_" CH "_FALLBACK_URL", .type = CONFIG_STRING, .offset = F(fallback_url[idx]),  \
     .help = "URL of the " ch " fallback provider (else the kind's own URL variable)"},            \
    {.env = "HERALD_" CH "_FALLBACK_AUTH_TOKEN", .type = CONFIG_STRING,                            \
     .offset = F(fallback_auth_token[idx]), .flags = CONFIG_SECRET,                                \
     .help = "Bearer token of an http " ch " fallback provider"},                                  \
    {.env = "HERALD_" CH "_RATE", .type = CONFIG_INT, .def = "0", .offset = F(rate[idx]),         \
     .min = 0, .max = 10000000, .help = ch " sends per second per worker (0: unlimited)"},        \
    {.env = "HERALD_" CH "_MAX_ATTEMPTS", .type = CONFIG_INT, .def = "5",                         \
     .offset = F(max_attempts[idx]), .min = 1, .max = 100,                                         \
     .help = ch " attempts before the DLQ"}
/* clang-format on */

const config_var worker_config_vars[] = {
    {.flag = "channel",
     .type = CONFIG_ENUM,
     .offset = F(channel),
     .flags = CONFIG_REQUIRED,
     .help = "the channel this worker delivers",
     .choices = channel_choices},
    {.env = "HERALD_METRICS_ADDR",
     .flag = "metrics-addr",
     .type = CONFIG_STRING,
     .offset = F(metrics_addr),
     .check = check_listen_addr,
     .help = "/metrics and /healthz (default email 127.0.0.1:9102, sms :9103, push :9104, "
             "inapp :9105)"},
    {.env = "HERALD_WORKER_ID",
     .type = CONFIG_STRING,
     .offset = F(worker_id),
     .help = "lease owner name in the deliveries table (default host:pid:random)"},
    {.env = "HERALD_WORKER_GROUP",
     .type = CONFIG_STRING,
     .offset = F(group_id),
     .help = "consumer group (default <prefix>worker.<channel>)"},
    {.env = "HERALD_WORKER_CONCURRENCY",
     .type = CONFIG_INT,
     .def = "64",
     .offset = F(concurrency),
     .min = 1,
     .max = 10000,
     .help = "provider requests in flight at once"},
    {.env = "HERALD_WORKER_LEASE",
     .type = CONFIG_DURATION,
     .def = "2m",
     .offset = F(lease_ms),
     .min = 100,
     .max = 86400000,
     .help = "how long a claimed delivery stays reserved for this worker"},
    {.env = "HERALD_WORKER_DRAIN_TIMEOUT",
     .type = CONFIG_DURATION,
     .def = "10s",
     .offset = F(drain_ms),
     .min = 0,
     .max = 600000,
     .help = "at shutdown, how long in-flight sends may take to finish"},
    {.env = "HERALD_PROVIDER_TIMEOUT",
     .type = CONFIG_DURATION,
     .def = "30s",
     .offset = F(provider_timeout_ms),
     .min = 100,
     .max = 600000,
     .help = "limit of one provider request"},
    {.env = "HERALD_RETRY_BASE_MS",
     .type = CONFIG_DURATION,
     .def = "1000",
     .offset = F(retry_base_ms),
     .min = 1,
     .max = 86400000,
     .help = "first retry delay; doubles per attempt, with jitter"},
    {.env = "HERALD_RETRY_MAX_MS",
     .type = CONFIG_DURATION,
     .def = "1h",
     .offset = F(retry_max_ms),
     .min = 1,
     .max = 604800000,
     .help = "longest retry delay (a Retry-After may exceed it)"},
    {.env = "HERALD_RETRY_HOLD_MAX",
     .type = CONFIG_INT,
     .def = "10000",
     .offset = F(retry_hold_max),
     .min = 1,
     .max = 1000000,
     .help = "retry records held in memory until due before retry partitions pause"},
    {.env = "HERALD_BREAKER_FAILURES",
     .type = CONFIG_INT,
     .def = "5",
     .offset = F(breaker_failures),
     .min = 1,
     .max = 100000,
     .help = "consecutive provider failures that open its circuit breaker"},
    {.env = "HERALD_BREAKER_COOLDOWN",
     .type = CONFIG_DURATION,
     .def = "30s",
     .offset = F(breaker_open_ms),
     .min = 10,
     .max = 3600000,
     .help = "how long an open breaker waits before a probe (doubles up to 8x)"},
    {.env = "HERALD_TLS_INSECURE",
     .type = CONFIG_BOOL,
     .def = "false",
     .offset = F(tls_insecure),
     .help = "accept unverified TLS certificates (tests only)"},
    PER_CHANNEL("EMAIL", "email", DELIVERY_EMAIL, "file"),
    PER_CHANNEL("SMS", "SMS", DELIVERY_SMS, "file"),
    PER_CHANNEL("PUSH", "push", DELIVERY_PUSH, "file"),
    PER_CHANNEL("INAPP", "in-app", DELIVERY_INAPP, "inbox"),
    {.env = "HERALD_SMTP_URL",
     .type = CONFIG_STRING,
     .offset = F(smtp_url),
     .help = "SMTP relay, smtp://host:port (STARTTLS when offered) or smtps://"},
    {.env = "HERALD_SMTP_USERNAME",
     .type = CONFIG_STRING,
     .offset = F(smtp_username),
     .help = "SMTP AUTH user"},
    {.env = "HERALD_SMTP_PASSWORD",
     .type = CONFIG_STRING,
     .offset = F(smtp_password),
     .flags = CONFIG_SECRET,
     .help = "SMTP AUTH password"},
    {.env = "HERALD_SMTP_CA_FILE",
     .type = CONFIG_STRING,
     .offset = F(smtp_ca_file),
     .check = check_ca_file,
     .help = "PEM bundle of the CAs that may sign the relay's certificate, instead of the "
             "system's trust store (a private relay's CA); checked at startup"},
    {.env = "HERALD_SMTP_REQUIRE_TLS",
     .type = CONFIG_BOOL,
     .def = "false",
     .offset = F(smtp_require_tls),
     .help = "smtp:// must upgrade with STARTTLS: a relay that does not offer it fails the "
             "send (transient) instead of getting the message in clear text"},
    {.env = "HERALD_EMAIL_FROM",
     .type = CONFIG_STRING,
     .offset = F(email_from),
     .help = "From of every email, addr@host or Name <addr@host>"},
    {.env = "HERALD_EMAIL_BOUNCE_ADDRESS",
     .type = CONFIG_STRING,
     .offset = F(email_bounce_address),
     .check = mailkey_check_bounce_address,
     .help = "LOCAL@DOMAIN: the SMTP envelope sender becomes LOCAL+<idempotency key>@DOMAIN "
             "(VERP), so bounces name their delivery; unset: the From address"},
    {.env = "HERALD_UNSUBSCRIBE_SECRET",
     .type = CONFIG_STRING,
     .offset = F(unsubscribe_secret),
     .flags = CONFIG_SECRET,
     .check = signedtoken_check_secret,
     .help = "key of the HMAC that signs unsubscribe links, at least 32 bytes, the same as "
             "the gateway's; with HERALD_UNSUBSCRIBE_URL it turns List-Unsubscribe on"},
    {.env = "HERALD_UNSUBSCRIBE_URL",
     .type = CONFIG_STRING,
     .offset = F(unsubscribe_url),
     .check = list_unsubscribe_check_url,
     .help = "the gateway's public base URL (https://notify.example.com): links go to "
             "<url>/v1/unsubscribe?token=..."},
    {.env = "HERALD_UNSUBSCRIBE_MAILTO",
     .type = CONFIG_STRING,
     .offset = F(unsubscribe_mailto),
     .help = "an address List-Unsubscribe also offers as mailto: (the token as subject); "
             "unset: the https link only"},
    {.env = "HERALD_UNSUBSCRIBE_EXEMPT",
     .type = CONFIG_STRING,
     .def = LIST_UNSUBSCRIBE_EXEMPT_DEFAULT,
     .offset = F(unsubscribe_exempt),
     .check = list_unsubscribe_check_exempt,
     .help = "comma-separated categories whose emails carry no List-Unsubscribe (besides "
             "events without a category and critical ones)"},
    {.env = "HERALD_UNSUBSCRIBE_TTL",
     .type = CONFIG_DURATION,
     .def = LIST_UNSUBSCRIBE_TTL_DEFAULT,
     .offset = F(unsubscribe_ttl_ms),
     .min = 3600000,
     .max = 31622400000,
     .help = "how long an unsubscribe link works after its email was sent (1h..366 days)"},
    {.env = "HERALD_SMS_URL",
     .type = CONFIG_STRING,
     .offset = F(sms_url),
     .help = "generic SMS endpoint, or the Twilio base URL"},
    {.env = "HERALD_SMS_AUTH_TOKEN",
     .type = CONFIG_STRING,
     .offset = F(sms_auth_token),
     .flags = CONFIG_SECRET,
     .help = "Bearer token of the generic SMS provider"},
    {.env = "HERALD_SMS_FROM",
     .type = CONFIG_STRING,
     .offset = F(sms_from),
     .help = "SMS sender number or name"},
    {.env = "HERALD_TWILIO_ACCOUNT_SID",
     .type = CONFIG_STRING,
     .offset = F(twilio_account_sid),
     .help = "Twilio account SID"},
    {.env = "HERALD_TWILIO_AUTH_TOKEN",
     .type = CONFIG_STRING,
     .offset = F(twilio_auth_token),
     .flags = CONFIG_SECRET,
     .help = "Twilio auth token"},
    {.env = "HERALD_TWILIO_STATUS_CALLBACK_URL",
     .type = CONFIG_STRING,
     .offset = F(twilio_status_callback_url),
     .check = check_callback_url,
     .help = "where Twilio posts each message's status callbacks (StatusCallback); "
             "http(s) URL, checked at startup"},
    {.env = "HERALD_PUSH_URL",
     .type = CONFIG_STRING,
     .offset = F(push_url),
     .help = "generic push endpoint, or the FCM base URL"},
    {.env = "HERALD_PUSH_AUTH_TOKEN",
     .type = CONFIG_STRING,
     .offset = F(push_auth_token),
     .flags = CONFIG_SECRET,
     .help = "Bearer token of the generic push provider"},
    {.env = "HERALD_FCM_PROJECT_ID",
     .type = CONFIG_STRING,
     .offset = F(fcm_project_id),
     .help = "FCM project id"},
    {.env = "HERALD_FCM_ACCESS_TOKEN",
     .type = CONFIG_STRING,
     .offset = F(fcm_access_token),
     .flags = CONFIG_SECRET,
     .help = "FCM OAuth 2 access token"},
    {.env = "HERALD_OUTBOX_DIR",
     .type = CONFIG_STRING,
     .def = ".herald/outbox",
     .offset = F(outbox_dir),
     .help = "where the file provider appends <channel>.jsonl"},
    {0},
};

const char *worker_config_default_metrics_addr(delivery_channel c)
{
    switch (c) {
    case DELIVERY_SMS:
        return "127.0.0.1:9103";
    case DELIVERY_PUSH:
        return "127.0.0.1:9104";
    case DELIVERY_INAPP:
        return "127.0.0.1:9105";
    case DELIVERY_EMAIL:
        break;
    }
    return "127.0.0.1:9102";
}

static const char *const channel_env[] = {"EMAIL", "SMS", "PUSH", "INAPP"};

int worker_config_check(const worker_config *cfg, char *err, size_t errlen)
{
    delivery_channel c = (delivery_channel)cfg->channel;
    const char *ch = delivery_channel_name(c);
    const char *kind = worker_config_providers[cfg->provider[c]];
    if (!provider_kind_serves(kind, ch) || cfg->provider[c] == 0) {
        error_set(err, errlen, "HERALD_%s_PROVIDER: \"%s\" cannot deliver %s", channel_env[c], kind,
                  ch);
        return -1;
    }
    int fb = cfg->fallback_provider[c];
    if (fb != 0 && !provider_kind_serves(worker_config_providers[fb], ch)) {
        error_set(err, errlen, "HERALD_%s_FALLBACK_PROVIDER: \"%s\" cannot deliver %s",
                  channel_env[c], worker_config_providers[fb], ch);
        return -1;
    }
    return 0;
}
