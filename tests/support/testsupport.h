/*
 * testsupport: what integration suites share — scratch databases with the
 * schema applied, unique topic prefixes, and running Herald's executables as
 * subprocesses with a deadline.
 */
#ifndef HERALD_TESTSUPPORT_H
#define HERALD_TESTSUPPORT_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/*
 * Creates database herald_test_<tag>_<random> next to $HERALD_DATABASE_URL's
 * and, when migrate is true, applies the schema to it.  Returns its URL
 * (caller frees with testsupport_db_drop) or NULL, printing why.
 */
char *testsupport_db_create(const char *tag, int migrate);

/* Drops the database (terminating leftover connections) and frees url. */
void testsupport_db_drop(char *url);

/* "t<random>." — a topic prefix no other run uses. */
void testsupport_topic_prefix(char *out, size_t outlen);

/* "<HERALD_BIN_DIR>/<name>" into out. */
char *testsupport_bin(const char *name, char *out, size_t outlen);

/*
 * Runs argv (argv[0] a path) with extra environment entries "K=V" added to
 * (or, with "K=" alone, removed from) the current environment, capturing
 * stdout and stderr (each truncated to its buffer).  Kills the child after
 * timeout_ms.  Returns the exit status (128+signal when killed, -1 when it
 * could not run).
 */
int testsupport_run(char *const argv[], const char *const env[], char *out, size_t outlen,
                    char *errout, size_t errlen, int timeout_ms);

/*
 * As testsupport_run() with the child's stderr a terminal (a pseudo-terminal
 * whose output lands in errout, newlines as "\r\n"): what a command shows
 * only to a person watching it.
 */
int testsupport_run_tty(char *const argv[], const char *const env[], char *out, size_t outlen,
                        char *errout, size_t errlen, int timeout_ms);

/* As testsupport_run() without waiting: returns the pid; output goes to the files given (may be
 * NULL). */
pid_t testsupport_spawn(char *const argv[], const char *const env[], const char *stdout_path,
                        const char *stderr_path);

/* Waits up to timeout_ms for pid; returns as testsupport_run() does. */
int testsupport_wait(pid_t pid, int timeout_ms);

/* A TCP port on 127.0.0.1 that was free a moment ago (bound, then closed):
 * for a daemon whose address must be known before it starts.  Fails the
 * test when no port can be had. */
int testsupport_free_port(void);

/*
 * Starts path with argv in its own process group, env entries "K=V" put
 * into its environment as given (NULL-terminated, may be NULL), stderr
 * appended to log.  stdout goes to log as well or, when listen_fd is not
 * NULL, to a pipe whose read end is stored there (for
 * testsupport_read_listen_line; the caller closes it).  With log NULL,
 * stderr (and stdout without listen_fd) stay the test's.  With
 * die_with_parent the child is killed when the test process ends, which a
 * failed assertion does before any teardown runs.  Returns the pid, or -1.
 */
pid_t testsupport_spawn_logged(const char *path, char *const argv[], const char *const env[],
                               const char *log, int *listen_fd, bool die_with_parent);

void testsupport_sleep_ms(long ms);

/*
 * Polls sql, a count, on db every 100 ms until it reaches want, timeout_ms
 * passes or, when alive is not NULL, alive(arg) turns false (a child the
 * test waits on died).  Returns the last value.
 */
long testsupport_wait_count(PGconn *db, const char *sql, long want, long timeout_ms,
                            bool (*alive)(void *arg), void *arg);

/* The whole file, NUL-terminated, malloc()ed, its length in *len (may be NULL); NULL when
 * unreadable. */
char *testsupport_read_file(const char *path, size_t *len);

/* The last cap - 1 bytes (at most) of the file at path into buf, for failure messages. */
const char *testsupport_file_tail(const char *path, char *buf, size_t cap);

/* Count of rows returned by sql on url, or -1 on error (printed). */
long testsupport_db_count(const char *url, const char *sql);

/*
 * Reads a test provider's first stdout line from fd (made non-blocking) for
 * up to timeout_ms: "listening on 127.0.0.1:<port>[ control 127.0.0.1:<port>]".
 * Stores the ports (control = port when absent) and the line as read.
 * Returns 0, or -1 when no such line came.
 */
int testsupport_read_listen_line(int fd, int timeout_ms, int *port, int *control, char *line,
                                 size_t linelen);

/*
 * SQL on an open connection, failing the current test (ck_assert) when the
 * statement fails.  _text returns the first column of the first row ("" when
 * none), malloc()ed; _long parses it as a number.
 */
void testsupport_sql(PGconn *db, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
char *testsupport_sql_text(PGconn *db, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
long testsupport_sql_long(PGconn *db, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * The value of header name (case-insensitive) in the header block of the
 * RFC 5322 message raw, unfolded (each CRLF before a space or tab
 * removed) into out; -1 when the header is absent or does not fit.
 */
int testsupport_mail_header(const char *raw, const char *name, char *out, size_t outlen);

/* The first <http...> link of a List-Unsubscribe value into out; -1 when none fits. */
int testsupport_unsubscribe_link(const char *value, char *out, size_t outlen);

#endif
