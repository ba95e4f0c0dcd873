/*
 * sms: what a rendered SMS body costs, and cutting it to a number of parts.
 *
 * sms_segments() counts what a carrier bills.  A body wholly in the GSM
 * 03.38 alphabet travels as GSM-7: 160 septets in one message, 153 per part
 * once split (7 go to the concatenation header); characters of the
 * extension table (^ { } \ [ ~ ] | € and form feed) take two septets and are
 * never split across parts.  Anything else forces UCS-2: 70 UTF-16 code
 * units in one message, 67 per part, surrogate pairs never split.
 */
#ifndef HERALD_SMS_H
#define HERALD_SMS_H

#include <stdbool.h>
#include <stddef.h>

typedef enum {
    SMS_GSM7 = 0,
    SMS_UCS2 = 1,
} sms_encoding;

/*
 * Number of SMS parts body needs (0 for an empty body), and its encoding in
 * *encoding (may be NULL).  Invalid UTF-8 bytes count as one UCS-2 unit each.
 */
int sms_segments(const char *body, sms_encoding *encoding);

/*
 * Fits body into max_segments SMS parts.  When it already fits, *out is a
 * copy of it.  Otherwise *out is the longest prefix that, followed by marker
 * (e.g. "…"; NULL for none), fits; trailing spaces are dropped before the
 * marker, and the cut never falls inside a UTF-8 character nor before a
 * combining mark, variation selector or zero-width joiner.  Note that a
 * marker outside GSM-7 ("…" is) turns the message into UCS-2 and so lowers
 * the capacity.  *truncated (may be NULL) says whether anything was cut.
 * The caller frees *out.  Returns -1 when max_segments < 1, the marker alone
 * does not fit, or memory runs out.
 */
int sms_truncate(const char *body, int max_segments, const char *marker, char **out,
                 bool *truncated, char *err, size_t errlen) __attribute__((warn_unused_result));

#endif
