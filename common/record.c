/*
 * record: see record.h.
 */
#include "record.h"

#include "error.h"

#include <string.h>

json_t *record_load(const char *json, size_t len, const char *what, bool *not_json, char *err,
                    size_t errlen)
{
    *not_json = false;
    if (json == NULL) {
        *not_json = true;
        error_set(err, errlen, "invalid JSON: empty record");
        return NULL;
    }
    json_error_t jerr;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (root == NULL) {
        *not_json = true;
        error_set(err, errlen, "invalid JSON: %s (line %d, column %d)", jerr.text, jerr.line,
                  jerr.column);
        return NULL;
    }
    if (!json_is_object(root)) {
        error_set(err, errlen, "%s must be a JSON object", what);
        json_decref(root);
        return NULL;
    }
    return root;
}

int record_put_string(json_t *o, const char *key, const char *value)
{
    if (value == NULL)
        return 0;
    json_t *v = json_string(value);
    return v != NULL && json_object_set_new_nocheck(o, key, v) == 0 ? 0 : -1;
}

int record_name_index(const char *const names[], int n, const char *s)
{
    for (int i = 0; s != NULL && i < n; i++)
        if (strcmp(s, names[i]) == 0)
            return i;
    return -1;
}
