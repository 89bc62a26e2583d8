/* test_meter.c - the metering API's batch document: one test per rule
 * (lib/meter.c). Times are fixed: NOW is 2026-12-07T20:00:00Z. */
#include "testutil.h"

#include "errgate/meter.h"

#define NOW 1796673600LL /* 2026-12-07T20:00:00Z */

/* One event with the given attributes' JSON text (a member list). */
static char *batch1(const char *id_member, const char *attrs)
{
    static char buf[8192];
    snprintf(buf, sizeof(buf), "{\"data\":[{%s\"type\":\"usage_events\",\"attributes\":{%s}}]}",
             id_member, attrs);
    return buf;
}

#define GOOD_ATTRS                                                                                 \
    "\"user_id\":\"u1\",\"event_type\":\"api.request\",\"quantity\":1,"                            \
    "\"timestamp\":\"2026-12-07T19:59:00Z\""

/* Parses text (one event) and returns its verdict's code (NULL: accepted),
 * with the pointer in ptr. */
static const char *verdict(const eg_meter_rules_t *r, const char *text, char *ptr, size_t cap)
{
    static char code[64];
    eg_meter_batch_t b;
    eg_meter_doc_error_t err;
    int rc = eg_meter_parse(r, text, strlen(text), NOW, &b, &err);
    if (rc != EG_OK) fail_msg("document refused: %s (%s)", err.message, text);
    assert_int_equal(b.n, 1);
    const char *c = b.ev[0].code;
    if (ptr) snprintf(ptr, cap, "%s", b.ev[0].pointer);
    assert_int_equal(b.rejected, c ? 1 : 0);
    if (c) snprintf(code, sizeof(code), "%s", c);
    eg_meter_batch_free(&b);
    return c ? code : NULL;
}

static void expect(const char *text, const char *code, const char *pointer)
{
    eg_meter_rules_t r;
    eg_meter_rules_default(&r);
    char ptr[64];
    const char *c = verdict(&r, text, ptr, sizeof(ptr));
    if (!code) {
        if (c) fail_msg("rejected with %s at %s: %s", c, ptr, text);
        return;
    }
    if (!c) fail_msg("accepted, expected %s: %s", code, text);
    assert_string_equal(c, code);
    assert_string_equal(ptr, pointer);
}

static void test_valid_event(void **state)
{
    (void)state;
    eg_meter_rules_t r;
    eg_meter_rules_default(&r);
    const char *t =
        "{\"data\":[{\"id\":\"ev\\u0031\",\"type\":\"usage_events\",\"attributes\":{"
        "\"user_id\":\"key_1\",\"event_type\":\"compute.minutes\",\"quantity\":2.5,"
        "\"timestamp\":\"2026-12-07T21:00:00+01:00\",\"metadata\":{\"region\":\"eu\"}}}]}";
    eg_meter_batch_t b;
    eg_meter_doc_error_t err;
    assert_int_equal(eg_meter_parse(&r, t, strlen(t), NOW, &b, &err), EG_OK);
    assert_int_equal(b.n, 1);
    assert_int_equal(b.rejected, 0);
    assert_null(b.ev[0].code);
    assert_string_equal(b.ev[0].id, "ev1"); /* unescaped */
    assert_string_equal(b.ev[0].user_id, "key_1");
    assert_string_equal(b.ev[0].event_type, "compute.minutes");
    assert_true(b.ev[0].quantity == 2.5);
    assert_int_equal(b.ev[0].ts, NOW); /* 21:00 at +01:00 is 20:00Z */
    assert_string_equal(b.ev[0].metadata, "{\"region\":\"eu\"}");
    eg_meter_batch_free(&b);
}

static void test_id_rule(void **state)
{
    (void)state;
    expect(batch1("", GOOD_ATTRS), "validation_error", "/data/0/id");
    expect(batch1("\"id\":7,", GOOD_ATTRS), "validation_error", "/data/0/id");
    expect(batch1("\"id\":\"\",", GOOD_ATTRS), "validation_error", "/data/0/id");
    expect(batch1("\"id\":\"a\\nb\",", GOOD_ATTRS), "validation_error", "/data/0/id");
    char id[300] = "\"id\":\"";
    memset(id + 6, 'x', 255);
    strcpy(id + 261, "\",");
    expect(batch1(id, GOOD_ATTRS), NULL, NULL); /* 255: the most */
    memset(id + 6, 'x', 256);
    strcpy(id + 262, "\",");
    expect(batch1(id, GOOD_ATTRS), "validation_error", "/data/0/id");
}

static void test_type_rule(void **state)
{
    (void)state;
    expect("{\"data\":[{\"id\":\"a\",\"type\":\"events\",\"attributes\":{" GOOD_ATTRS "}}]}",
           "validation_error", "/data/0/type");
    expect("{\"data\":[{\"id\":\"a\",\"attributes\":{" GOOD_ATTRS "}}]}", "validation_error",
           "/data/0/type");
    expect("{\"data\":[{\"id\":\"a\",\"type\":\"usage_events\"}]}", "validation_error",
           "/data/0/attributes");
    expect("{\"data\":[7]}", "validation_error", "/data/0");
}

static void test_user_id_rule(void **state)
{
    (void)state;
    expect(batch1("\"id\":\"a\",", "\"event_type\":\"api.request\",\"quantity\":1,"
                                   "\"timestamp\":\"2026-12-07T19:59:00Z\""),
           "validation_error", "/data/0/attributes/user_id");
    expect(batch1("\"id\":\"a\",", "\"user_id\":5,\"event_type\":\"api.request\",\"quantity\":1,"
                                   "\"timestamp\":\"2026-12-07T19:59:00Z\""),
           "validation_error", "/data/0/attributes/user_id");
}

static void test_event_type_rule(void **state)
{
    (void)state;
    const char *ok[] = {"api.request",  "compute.minutes",  "storage.gb",
                        "bandwidth.gb", "custom.gpu_hours", "custom.a.b:c-d"};
    const char *bad[] = {"api.requests", "custom.", "custom",    "custom.a b",
                         "Api.request",  "",        "storage.GB"};
    char a[512];
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        snprintf(a, sizeof(a),
                 "\"user_id\":\"u\",\"event_type\":\"%s\",\"quantity\":1,"
                 "\"timestamp\":\"2026-12-07T19:59:00Z\"",
                 ok[i]);
        expect(batch1("\"id\":\"a\",", a), NULL, NULL);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(a, sizeof(a),
                 "\"user_id\":\"u\",\"event_type\":\"%s\",\"quantity\":1,"
                 "\"timestamp\":\"2026-12-07T19:59:00Z\"",
                 bad[i]);
        expect(batch1("\"id\":\"a\",", a), "invalid_event_type", "/data/0/attributes/event_type");
    }
    expect(batch1("\"id\":\"a\",", "\"user_id\":\"u\",\"quantity\":1,"
                                   "\"timestamp\":\"2026-12-07T19:59:00Z\""),
           "invalid_event_type", "/data/0/attributes/event_type");
    /* a configured list replaces the default one */
    eg_meter_rules_t r;
    eg_meter_rules_default(&r);
    const char *mine[] = {"sms.sent"};
    r.event_types = mine;
    r.nevent_types = 1;
    assert_true(eg_meter_type_allowed(&r, "sms.sent", 8));
    assert_false(eg_meter_type_allowed(&r, "api.request", 11));
    assert_false(eg_meter_type_allowed(&r, "custom.x", 8));
}

static void test_quantity_rule(void **state)
{
    (void)state;
    const char *ok[] = {"1", "0.001", "1e3", "1000000"};
    const char *bad[] = {"0", "-1", "-0.5", "0.0", "\"5\"", "null", "true", "[1]", "{}"};
    char a[512];
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        snprintf(a, sizeof(a),
                 "\"user_id\":\"u\",\"event_type\":\"api.request\",\"quantity\":%s,"
                 "\"timestamp\":\"2026-12-07T19:59:00Z\"",
                 ok[i]);
        expect(batch1("\"id\":\"a\",", a), NULL, NULL);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(a, sizeof(a),
                 "\"user_id\":\"u\",\"event_type\":\"api.request\",\"quantity\":%s,"
                 "\"timestamp\":\"2026-12-07T19:59:00Z\"",
                 bad[i]);
        expect(batch1("\"id\":\"a\",", a), "invalid_quantity", "/data/0/attributes/quantity");
    }
    expect(batch1("\"id\":\"a\",", "\"user_id\":\"u\",\"event_type\":\"api.request\","
                                   "\"timestamp\":\"2026-12-07T19:59:00Z\""),
           "invalid_quantity", "/data/0/attributes/quantity");
}

static void test_timestamp_rule(void **state)
{
    (void)state;
    /* NOW is 20:00:00Z; 1 minute ahead and 7 days back are the bounds */
    const char *ok[] = {"2026-12-07T20:01:00Z", "2026-11-30T20:00:00Z", "2026-12-07T20:00:00.123Z",
                        "2026-12-07t19:00:00z", "2026-12-07T15:00:00-05:00"};
    const char *bad[] = {"2026-12-07T20:01:01Z",    "2026-11-30T19:59:59Z", "2026-12-07",
                         "2026-12-07T20:00:00",     "2026-12-07 20:00:00Z", "2026-02-29T00:00:00Z",
                         "2026-12-07T24:00:00Z",    "1796673600",           "2026-12-07T20:00:00.Z",
                         "2026-12-07T20:00:00+0100"};
    char a[512];
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        snprintf(a, sizeof(a),
                 "\"user_id\":\"u\",\"event_type\":\"api.request\",\"quantity\":1,"
                 "\"timestamp\":\"%s\"",
                 ok[i]);
        expect(batch1("\"id\":\"a\",", a), NULL, NULL);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(a, sizeof(a),
                 "\"user_id\":\"u\",\"event_type\":\"api.request\",\"quantity\":1,"
                 "\"timestamp\":\"%s\"",
                 bad[i]);
        expect(batch1("\"id\":\"a\",", a), "invalid_timestamp", "/data/0/attributes/timestamp");
    }
    expect(batch1("\"id\":\"a\",",
                  "\"user_id\":\"u\",\"event_type\":\"api.request\",\"quantity\":1,"
                  "\"timestamp\":1796673600"),
           "invalid_timestamp", "/data/0/attributes/timestamp");
    int64_t t;
    assert_int_equal(eg_meter_parse_time("1970-01-01T00:00:00Z", 20, &t), EG_OK);
    assert_int_equal(t, 0);
    assert_int_equal(eg_meter_parse_time("2024-02-29T23:59:60Z", 20, &t), EG_OK);
    assert_int_equal(t, 1709251199);
    /* configurable bounds */
    eg_meter_rules_t r;
    eg_meter_rules_default(&r);
    r.max_age_s = 3600;
    r.max_future_s = 0;
    const char *two_h =
        batch1("\"id\":\"a\",", "\"user_id\":\"u\",\"event_type\":\"api.request\","
                                "\"quantity\":1,\"timestamp\":\"2026-12-07T18:00:00Z\"");
    assert_non_null(verdict(&r, two_h, NULL, 0));
    const char *ahead =
        batch1("\"id\":\"a\",", "\"user_id\":\"u\",\"event_type\":\"api.request\","
                                "\"quantity\":1,\"timestamp\":\"2026-12-07T20:00:01Z\"");
    assert_non_null(verdict(&r, ahead, NULL, 0));
}

static void test_metadata_rule(void **state)
{
    (void)state;
    expect(batch1("\"id\":\"a\",", GOOD_ATTRS ",\"metadata\":null"), NULL, NULL);
    expect(batch1("\"id\":\"a\",", GOOD_ATTRS ",\"metadata\":{}"), NULL, NULL);
    expect(batch1("\"id\":\"a\",", GOOD_ATTRS ",\"metadata\":[1]"), "validation_error",
           "/data/0/attributes/metadata");
    expect(batch1("\"id\":\"a\",", GOOD_ATTRS ",\"metadata\":\"x\""), "validation_error",
           "/data/0/attributes/metadata");
    char a[6000];
    int k = snprintf(a, sizeof(a), GOOD_ATTRS ",\"metadata\":{\"k\":\"");
    memset(a + k, 'x', 4100);
    strcpy(a + k + 4100, "\"}");
    expect(batch1("\"id\":\"a\",", a), "validation_error", "/data/0/attributes/metadata");
}

static void test_document(void **state)
{
    (void)state;
    eg_meter_rules_t r;
    eg_meter_rules_default(&r);
    eg_meter_batch_t b;
    eg_meter_doc_error_t err;
    const char *bad_json = "{\"data\": [}";
    assert_int_equal(eg_meter_parse(&r, bad_json, strlen(bad_json), NOW, &b, &err), EG_EPARSE);
    assert_string_equal(err.code, "invalid_json");
    assert_int_equal(err.line, 1);
    assert_true(err.position > 0);
    const char *docs[] = {"[]", "{}", "{\"data\":{}}", "{\"data\":[]}"};
    const char *ptrs[] = {"", "/data", "/data", "/data"};
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(eg_meter_parse(&r, docs[i], strlen(docs[i]), NOW, &b, &err), EG_EPARSE);
        assert_string_equal(err.code, "validation_error");
        assert_string_equal(err.pointer, ptrs[i]);
    }
    /* 1000 events pass, 1001 are refused whole */
    size_t cap = 1002 * 160 + 64, len = 0;
    char *big = malloc(cap);
    assert_non_null(big);
    for (int n = 1000; n <= 1001; n++) {
        len = (size_t)snprintf(big, cap, "{\"data\":[");
        for (int i = 0; i < n; i++)
            len += (size_t)snprintf(big + len, cap - len,
                                    "%s{\"id\":\"e%d\",\"type\":\"usage_events\",\"attributes\":{"
                                    "\"user_id\":\"u\",\"event_type\":\"api.request\",\"quantity\":"
                                    "%d,\"timestamp\":\"2026-12-07T19:00:00Z\"}}",
                                    i ? "," : "", i, i % 10 == 3 ? 0 : 1);
        len += (size_t)snprintf(big + len, cap - len, "]}");
        int rc = eg_meter_parse(&r, big, len, NOW, &b, &err);
        if (n == 1000) {
            assert_int_equal(rc, EG_OK);
            assert_int_equal(b.n, 1000);
            assert_int_equal(b.rejected, 100); /* every tenth has quantity 0 */
            assert_string_equal(b.ev[3].code, "invalid_quantity");
            assert_string_equal(b.ev[3].pointer, "/data/3/attributes/quantity");
            assert_string_equal(b.ev[993].pointer, "/data/993/attributes/quantity");
            assert_null(b.ev[4].code);
            eg_meter_batch_free(&b);
        } else {
            assert_int_equal(rc, EG_EPARSE);
            assert_string_equal(err.pointer, "/data");
            assert_non_null(strstr(err.message, "1001"));
        }
    }
    free(big);
}

static void test_messages_quote_whole_characters(void **state)
{
    (void)state;
    assert_int_equal(eg_meter_utf8_cut("abc", 3, 64), 3);
    /* "aé" is 61 a's then C3 A9: cut at 62 keeps 61 bytes, not half of é */
    char s[80];
    memset(s, 'a', 61);
    memcpy(s + 61, "\xc3\xa9xyz", 5);
    assert_int_equal(eg_meter_utf8_cut(s, 66, 62), 61);
    assert_int_equal(eg_meter_utf8_cut(s, 66, 63), 63);
    /* an unknown type of multibyte characters is quoted as valid UTF-8 */
    eg_meter_rules_t r;
    eg_meter_rules_default(&r);
    char a[1024], t[200] = "";
    for (int i = 0; i < 40; i++)
        strcat(t, "\xe2\x82\xac"); /* 40 euro signs, 120 bytes */
    snprintf(a, sizeof(a),
             "{\"data\":[{\"id\":\"a\",\"type\":\"usage_events\",\"attributes\":{\"user_id\":\"u\","
             "\"event_type\":\"%s\",\"quantity\":1,\"timestamp\":\"2026-12-07T19:59:00Z\"}}]}",
             t);
    eg_meter_batch_t b;
    eg_meter_doc_error_t err;
    assert_int_equal(eg_meter_parse(&r, a, strlen(a), NOW, &b, &err), EG_OK);
    assert_string_equal(b.ev[0].code, "invalid_event_type");
    json_t *j = json_string(b.ev[0].message); /* NULL for invalid UTF-8 */
    assert_non_null(j);
    json_decref(j);
    eg_meter_batch_free(&b);
}

static void test_reject(void **state)
{
    (void)state;
    eg_meter_rules_t r;
    eg_meter_rules_default(&r);
    const char *t = batch1("\"id\":\"a\",", GOOD_ATTRS);
    eg_meter_batch_t b;
    eg_meter_doc_error_t err;
    assert_int_equal(eg_meter_parse(&r, t, strlen(t), NOW, &b, &err), EG_OK);
    eg_meter_reject(&b, 0, "user_not_found", "/attributes/user_id", "No user 'u1'.");
    eg_meter_reject(&b, 0, "user_not_found", "/attributes/user_id", "again");
    assert_int_equal(b.rejected, 1); /* counted once */
    assert_string_equal(b.ev[0].pointer, "/data/0/attributes/user_id");
    eg_meter_batch_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_event),
        cmocka_unit_test(test_id_rule),
        cmocka_unit_test(test_type_rule),
        cmocka_unit_test(test_user_id_rule),
        cmocka_unit_test(test_event_type_rule),
        cmocka_unit_test(test_quantity_rule),
        cmocka_unit_test(test_timestamp_rule),
        cmocka_unit_test(test_metadata_rule),
        cmocka_unit_test(test_document),
        cmocka_unit_test(test_reject),
        cmocka_unit_test(test_messages_quote_whole_characters),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
