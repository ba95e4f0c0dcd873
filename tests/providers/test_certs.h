/*
 * test_certs: throwaway certificates for the TLS tests, made at test time
 * with the openssl command line (Debian's `openssl` package), never checked
 * in.
 *
 * test_certs_make() fills a scratch directory with:
 *   ca.pem                    a test CA, the one clients are told to trust
 *   server.pem, server.key    a server certificate for 127.0.0.1 and
 *                             localhost, signed by ca.pem
 *   rogue-ca.pem              a second CA that nobody trusts
 *   rogue.pem, rogue.key      the same names, signed by rogue-ca.pem
 *   other-name.pem/.key       signed by ca.pem, but for other.example only
 * EC P-256 keys, valid for two days.  Header-only, so the provider tests and
 * the worker integration tests share it without a library between them.
 * The openssl runs are bounded in time; their output goes to openssl.log in
 * the directory, quoted in err on failure.
 */
#ifndef HERALD_TESTS_PROVIDERS_TEST_CERTS_H
#define HERALD_TESTS_PROVIDERS_TEST_CERTS_H

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* One openssl run should take milliseconds; a stuck one is killed. */
#define TEST_CERTS_RUN_MS 30000

typedef struct test_certs {
    char dir[200];
    char ca[256];
    char cert[256], key[256];
    char rogue_ca[256];
    char rogue_cert[256], rogue_key[256];
    char other_cert[256], other_key[256];
} test_certs;

/* Runs openssl with argv (argv[0] is "openssl"), output to <dir>/openssl.log. */
static inline int test_certs_run(const char *dir, const char *const *argv, char *err, size_t errlen)
{
    char log[256];
    snprintf(log, sizeof log, "%s/openssl.log", dir);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(err, errlen, "fork: %s", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        int devnull = open("/dev/null", O_RDONLY);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        if (devnull >= 0)
            dup2(devnull, 0);
        execvp("openssl", (char *const *)argv);
        _exit(127);
    }
    int status = 0;
    struct timespec step = {0, 10 * 1000000L};
    for (int waited = 0;; waited += 10) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            break;
        if (r < 0 || waited >= TEST_CERTS_RUN_MS) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            snprintf(err, errlen, "openssl %s did not finish in %d ms", argv[1], TEST_CERTS_RUN_MS);
            return -1;
        }
        nanosleep(&step, NULL);
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 127) {
        snprintf(err, errlen, "cannot run openssl: install the openssl package");
        return -1;
    }
    /* The end of the log says why. */
    char tail[300] = "";
    FILE *f = fopen(log, "r");
    if (f != NULL) {
        if (fseek(f, -(long)(sizeof tail - 1), SEEK_END) != 0)
            rewind(f);
        size_t n = fread(tail, 1, sizeof tail - 1, f);
        tail[n] = '\0';
        fclose(f);
    }
    snprintf(err, errlen, "openssl %s failed (status %d): %s", argv[1], status, tail);
    return -1;
}

/*
 * One certificate and its new key: a self-signed CA when ca_cert is NULL,
 * otherwise a server certificate for san ("IP:127.0.0.1,DNS:localhost")
 * signed by ca_cert/ca_key.
 */
static inline int test_certs_issue(const char *dir, const char *cert, const char *key,
                                   const char *cn, const char *ca_cert, const char *ca_key,
                                   const char *san, char *err, size_t errlen)
{
    char subj[128], san_ext[160];
    snprintf(subj, sizeof subj, "/CN=%s", cn);
    snprintf(san_ext, sizeof san_ext, "subjectAltName=%s", san != NULL ? san : "");
    const char *argv[32] = {
        "openssl", "req",     "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
        "-nodes",  "-keyout", key,     "-out",    cert, "-days",    "2",
        "-subj",   subj};
    int n = 16;
    if (ca_cert == NULL) {
        const char *ext[] = {"-addext", "basicConstraints=critical,CA:TRUE", "-addext",
                             "keyUsage=critical,keyCertSign,cRLSign"};
        for (size_t i = 0; i < sizeof ext / sizeof ext[0]; i++)
            argv[n++] = ext[i];
    } else {
        const char *ext[] = {"-CA",     ca_cert,
                             "-CAkey",  ca_key,
                             "-addext", san_ext,
                             "-addext", "basicConstraints=critical,CA:FALSE",
                             "-addext", "keyUsage=critical,digitalSignature",
                             "-addext", "extendedKeyUsage=serverAuth"};
        for (size_t i = 0; i < sizeof ext / sizeof ext[0]; i++)
            argv[n++] = ext[i];
    }
    argv[n] = NULL;
    return test_certs_run(dir, argv, err, errlen);
}

/* Makes dir (which must not exist yet) and every certificate in it. */
static inline int test_certs_make(const char *dir, test_certs *out, char *err, size_t errlen)
{
    char ca_key[256], rogue_ca_key[256];
    memset(out, 0, sizeof *out);
    if (mkdir(dir, 0700) != 0) {
        snprintf(err, errlen, "mkdir %s: %s", dir, strerror(errno));
        return -1;
    }
    snprintf(out->dir, sizeof out->dir, "%s", dir);
    snprintf(out->ca, sizeof out->ca, "%s/ca.pem", dir);
    snprintf(ca_key, sizeof ca_key, "%s/ca.key", dir);
    snprintf(out->cert, sizeof out->cert, "%s/server.pem", dir);
    snprintf(out->key, sizeof out->key, "%s/server.key", dir);
    snprintf(out->rogue_ca, sizeof out->rogue_ca, "%s/rogue-ca.pem", dir);
    snprintf(rogue_ca_key, sizeof rogue_ca_key, "%s/rogue-ca.key", dir);
    snprintf(out->rogue_cert, sizeof out->rogue_cert, "%s/rogue.pem", dir);
    snprintf(out->rogue_key, sizeof out->rogue_key, "%s/rogue.key", dir);
    snprintf(out->other_cert, sizeof out->other_cert, "%s/other-name.pem", dir);
    snprintf(out->other_key, sizeof out->other_key, "%s/other-name.key", dir);
    static const char local_san[] = "IP:127.0.0.1,DNS:localhost";
    if (test_certs_issue(dir, out->ca, ca_key, "Herald Test CA", NULL, NULL, NULL, err, errlen) !=
            0 ||
        test_certs_issue(dir, out->cert, out->key, "localhost", out->ca, ca_key, local_san, err,
                         errlen) != 0 ||
        test_certs_issue(dir, out->rogue_ca, rogue_ca_key, "Untrusted Test CA", NULL, NULL, NULL,
                         err, errlen) != 0 ||
        test_certs_issue(dir, out->rogue_cert, out->rogue_key, "localhost", out->rogue_ca,
                         rogue_ca_key, local_san, err, errlen) != 0 ||
        test_certs_issue(dir, out->other_cert, out->other_key, "other.example", out->ca, ca_key,
                         "DNS:other.example", err, errlen) != 0)
        return -1;
    return 0;
}

/* Removes what test_certs_make() wrote (unless HERALD_TEST_KEEP is set). */
static inline void test_certs_remove(const test_certs *c)
{
    static const char *const names[] = {"ca.pem",         "ca.key",       "server.pem",
                                        "server.key",     "rogue-ca.pem", "rogue-ca.key",
                                        "rogue.pem",      "rogue.key",    "other-name.pem",
                                        "other-name.key", "openssl.log",  NULL};
    char path[300];
    if (c->dir[0] == '\0' || getenv("HERALD_TEST_KEEP") != NULL)
        return;
    for (int i = 0; names[i] != NULL; i++) {
        snprintf(path, sizeof path, "%s/%s", c->dir, names[i]);
        (void)unlink(path);
    }
    (void)rmdir(c->dir);
}

#endif
