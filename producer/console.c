/*
 * console: URL map, the session check of the pages, and their headers.
 */
#include "console.h"

#include "console_api.h"
#include "log.h"

#include <stdio.h>
#include <string.h>

const console_file *console_file_find(const char *path)
{
    for (const console_file *f = console_files; f->path != NULL; f++)
        if (strcmp(f->path, path) == 0)
            return f;
    return NULL;
}

bool console_owns(const char *path)
{
    return strcmp(path, "/console") == 0 || strncmp(path, "/console/", 9) == 0;
}

console_page console_map(const char *path, char *file, size_t filelen, bool *needs_session)
{
    static const struct {
        const char *url, *file;
        bool session;
    } pages[] = {
        {"/console/", "index.html", true},        {"/console/login", "login.html", false},
        {"/console/dlq", "dlq.html", true},       {"/console/event", "event.html", true},
        {"/console/replay", "replay.html", true},
    };
    static const char static_prefix[] = "/console/static/";
    if (!console_owns(path))
        return CONSOLE_PAGE_NOT_CONSOLE;
    if (strcmp(path, "/console") == 0)
        return CONSOLE_PAGE_REDIRECT;
    for (size_t i = 0; i < sizeof pages / sizeof pages[0]; i++)
        if (strcmp(path, pages[i].url) == 0) {
            *needs_session = pages[i].session;
            return snprintf(file, filelen, "%s", pages[i].file) < (int)filelen
                       ? CONSOLE_PAGE_FILE
                       : CONSOLE_PAGE_NOT_FOUND;
        }
    /* Assets are named literally: no "..", no escapes, nothing the table
     * does not hold, so nothing outside console/static/ can be reached. */
    const char *rest = path + sizeof static_prefix - 1;
    if (strncmp(path, static_prefix, sizeof static_prefix - 1) != 0 || *rest == '\0' ||
        *rest == '/' || rest[strlen(rest) - 1] == '/' || strstr(rest, "..") != NULL ||
        strchr(rest, '%') != NULL || strstr(rest, "//") != NULL)
        return CONSOLE_PAGE_NOT_FOUND;
    *needs_session = false;
    return snprintf(file, filelen, "static/%s", rest) < (int)filelen ? CONSOLE_PAGE_FILE
                                                                     : CONSOLE_PAGE_NOT_FOUND;
}

static void security_headers(http_request *req)
{
    http_add_header(req, "Content-Security-Policy", CONSOLE_CSP);
    http_add_header(req, "X-Content-Type-Options", "nosniff");
    http_add_header(req, "Referrer-Policy", "no-referrer");
    http_add_header(req, "Cache-Control", "no-store");
}

void console_serve(api_env *env, http_request *req, api_call *call)
{
    char file[256], err[160];
    bool needs_session = false;
    security_headers(req);
    if (env->console_secret == NULL) {
        http_respond_error(req, 404, "not_found",
                           "the console is disabled (HERALD_CONSOLE_SECRET is not set)", NULL);
        return;
    }
    const char *method = http_request_method(req);
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        http_add_header(req, "Allow", "GET, HEAD");
        http_respond_error(req, 405, "method_not_allowed", "the console's pages are read only",
                           NULL);
        return;
    }
    switch (console_map(http_request_path(req), file, sizeof file, &needs_session)) {
    case CONSOLE_PAGE_FILE:
        break;
    case CONSOLE_PAGE_REDIRECT:
        http_add_header(req, "Location", "/console/");
        http_respond(req, 301, NULL, NULL, 0);
        return;
    case CONSOLE_PAGE_NOT_FOUND:
    case CONSOLE_PAGE_NOT_CONSOLE:
        http_respond_error(req, 404, "not_found", "no such console page", NULL);
        return;
    }
    /* The session first: without one, nobody learns which pages exist. */
    if (needs_session) {
        switch (console_api_authenticate(env, req, call, err, sizeof err)) {
        case CONSOLE_AUTH_OK:
            break;
        case CONSOLE_AUTH_UNAVAILABLE:
            http_respond_retry(req, 503, "unavailable", err, 1);
            return;
        case CONSOLE_AUTH_NONE:
        case CONSOLE_AUTH_INVALID:
            http_add_header(req, "Location", "/console/login");
            http_respond(req, 302, NULL, NULL, 0);
            return;
        }
    }
    const console_file *f = console_file_find(file);
    if (f == NULL) {
        http_respond_error(req, 404, "not_found", "no such console page", NULL);
        return;
    }
    http_respond(req, 200, f->content_type, f->bytes, f->len);
}
