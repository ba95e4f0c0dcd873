/*
 * console: the ops console's pages, served by the gateway under /console/
 * (docs/console.md).
 *
 * The files of console/ in the source tree are embedded into the binary at
 * build time (cmake/embed_files.cmake writes console_files), so a gateway
 * needs nothing on disk.  URLs map onto them:
 *
 *   /console              301 -> /console/
 *   /console/             index.html   (session needed)
 *   /console/login        login.html
 *   /console/dlq          dlq.html     (session needed)
 *   /console/event        event.html   (session needed)
 *   /console/replay       replay.html  (session needed)
 *   /console/static/<f>   static/<f>
 *
 * anything else is 404.  A page needing a session, without a valid one, is
 * a 302 to /console/login.  Every answer carries the Content-Security-Policy
 * and the other headers of CONSOLE_HEADERS; with HERALD_CONSOLE_SECRET unset
 * everything under /console is 404.
 */
#ifndef HERALD_CONSOLE_H
#define HERALD_CONSOLE_H

#include "api.h"

#include <stdbool.h>
#include <stddef.h>

#define CONSOLE_CSP                                                                                \
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "              \
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

/* One embedded file: its path under console/ ("static/console.css"). */
typedef struct console_file {
    const char *path;
    const char *content_type;
    const char *bytes;
    size_t len;
} console_file;

/* Generated; ended by an entry whose path is NULL. */
extern const console_file console_files[];

/* The embedded file at path, or NULL. */
const console_file *console_file_find(const char *path);

typedef enum {
    CONSOLE_PAGE_FILE = 0,   /* *file is the path under console/ */
    CONSOLE_PAGE_REDIRECT,   /* "/console": to "/console/" */
    CONSOLE_PAGE_NOT_FOUND,  /* under /console/, but no such page */
    CONSOLE_PAGE_NOT_CONSOLE /* not under /console at all */
} console_page;

/*
 * Maps a raw URL path (no query) onto the file it serves, into
 * file[0..filelen), and whether it needs a session.  Pure.
 */
console_page console_map(const char *path, char *file, size_t filelen, bool *needs_session);

/* Whether path is /console or under /console/: console_serve() answers it. */
bool console_owns(const char *path);

/* Answers a request under /console (after call_attach: call is req's). */
void console_serve(api_env *env, http_request *req, api_call *call);

#endif
