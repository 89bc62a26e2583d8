"""`errgate validate --schema FILE`: a JSON value on stdin answered as the
gateway answers an invalid body (issue 22, item 7).

Schemas are fixtures (tests/fixtures/schemas/); every expected field error,
message and exit code is written here."""
import json
import os
import subprocess

import pytest

from conftest import BIN, DIALECTS, read_error, spell

FIXTURES = os.environ.get("EG_FIXTURES", os.path.join(os.path.dirname(__file__), "../fixtures"))
SCHEMAS = os.path.join(FIXTURES, "schemas")


def validate(schema, body, *args):
    """Runs errgate validate; returns (exit code, stdout, stderr)."""
    p = subprocess.run([BIN, "validate", "--schema", os.path.join(SCHEMAS, schema), *args],
                       input=body if isinstance(body, bytes) else body.encode(),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


GOOD_ORDER = {"email": "a@example.com", "num": 5, "country": "FR", "kind": "retail",
              "note": None, "items": [{"sku": "ABC-1234", "qty": 2}]}


def test_valid_instance_exits_0_and_prints_nothing():
    rc, out, err = validate("order.json", json.dumps(GOOD_ORDER))
    assert (rc, out, err) == (0, "", "")


def test_every_problem_at_once_in_problem_dialect():
    body = {"num": 150, "country": "XX", "kind": "other", "note": "far too long a note",
            "items": [{"sku": "ABC-1234", "qty": 1}, {"sku": "abc", "qty": 0}], "extra": True}
    rc, out, err = validate("order.json", json.dumps(body))
    assert rc == 1 and err == ""
    b = json.loads(out)
    assert b["status"] == 400 and b["code"] == "validation_error" and b["title"] == "Validation Failed"
    got = {e["pointer"]: (e["field"], e["constraint"], e["detail"]) for e in b["errors"]}
    assert got == {
        "/num": ("num", "maximum", "must be at most 100"),
        "/country": ("country", "format", "must be a valid ISO 3166-1 alpha-2 country code"),
        "/kind": ("kind", "enum", 'must be one of: "retail", "wholesale"'),
        "/note": ("note", "maxLength", "must be at most 10 characters long"),
        "/items/1/sku": ("items[1].sku", "pattern", "must match the pattern '^[A-Z]{3}-[0-9]{4}$'"),
        "/items/1/qty": ("items[1].qty", "minimum", "must be at least 1"),
        "/extra": ("extra", "additionalProperties", "is not allowed"),
        "/email": ("email", "required", "is required"),
    }
    by = {e["pointer"]: e for e in b["errors"]}
    assert by["/num"]["value"] == 150 and by["/num"]["maximum"] == 100
    assert by["/kind"]["allowed"] == ["retail", "wholesale"]
    assert by["/note"]["value"] == "far too long a note"
    assert "value" not in by["/email"]


@pytest.mark.parametrize("dialect", DIALECTS)
def test_each_dialect_renders_the_field_errors(dialect):
    body = {"email": "a@example.com", "num": 0, "items": [{"sku": "ABC-1234"}]}
    rc, out, _ = validate("order.json", json.dumps(body), "--dialect", dialect)
    assert rc == 1
    r = read_error(out, dialect)
    assert r["code"] == spell("validation_error", dialect)
    assert r["fields"] == 2, out


def test_flat_snake_field_constraint_value():
    """One field error: flat-snake's {field, constraint, value} details."""
    rc, out, _ = validate("order.json", json.dumps(dict(GOOD_ORDER, num=150)), "--dialect", "flat-snake")
    assert rc == 1
    assert json.loads(out) == {
        "error": "validation_error", "message": "The request contains invalid parameters.",
        "status_code": 400,
        "details": {"field": "num", "message": "must be at most 100", "constraint": "maximum",
                    "value": 150, "maximum": 100}}


def test_invalid_json_answers_invalid_json_with_position():
    rc, out, err = validate("order.json", '{\n  "email": }')
    assert rc == 1 and err == ""
    b = json.loads(out)
    assert b["code"] == "invalid_json" and b["status"] == 400
    # as jansson counts: position is the bytes read through the bad token
    assert (b["position"], b["line"], b["column"]) == (14, 2, 12)


def test_ref_to_sibling_yaml_file_and_inside_the_document():
    rc, out, _ = validate("pet.yaml", json.dumps({"name": "Rex", "tag": "good"}))
    assert rc == 0, out
    rc, out, _ = validate("pet.yaml", json.dumps({"name": "", "tag": "Good Dog!", "owner": {"id": "x"}}))
    assert rc == 1
    # both of the tag's keywords fail (from common.yaml): each is its own field error
    got = sorted((e["pointer"], e["constraint"]) for e in json.loads(out)["errors"])
    assert got == [("/name", "minLength"), ("/owner/id", "format"), ("/tag", "maxLength"), ("/tag", "pattern")]


def test_bad_schema_exits_2_with_file_line_column():
    rc, out, err = validate("cycle.json", "{}")
    assert rc == 2 and out == ""
    path = os.path.join(SCHEMAS, "cycle.json")
    assert err.strip() == (f"errgate: validate: {path}:3:10: $ref cycle: this schema refers back to itself "
                           "without checking any value in between")
    rc, out, err = validate("bad_type.yaml", "{}")
    assert rc == 2 and err.strip() == f"errgate: validate: {os.path.join(SCHEMAS, 'bad_type.yaml')}:4:11: unknown type 'integr'"


def test_unsupported_keyword_is_a_warning_not_silence():
    rc, out, err = validate("unknown_kw.json", '{"a": 1, "b": 2}')
    assert rc == 0 and out == ""
    path = os.path.join(SCHEMAS, "unknown_kw.json")
    assert err.strip() == (f"errgate: warning: {path}:4:3: keyword 'unevaluatedProperties' is not supported "
                           "and is ignored")


def test_openapi30_nullable_and_boolean_exclusive_minimum():
    assert validate("nullable30.yaml", '{"nick": null, "score": 0.5}', "--openapi30")[0] == 0
    rc, out, _ = validate("nullable30.yaml", '{"nick": null, "score": 0}', "--openapi30")
    assert rc == 1
    [e] = json.loads(out)["errors"]
    assert (e["pointer"], e["constraint"], e["detail"]) == ("/score", "exclusiveMinimum", "must be greater than 0")
    # without --openapi30 a boolean exclusiveMinimum is a mistake in the schema
    rc, _, err = validate("nullable30.yaml", "{}")
    assert rc == 2 and "'exclusiveMinimum' must be a number" in err


def test_usage_errors_exit_2():
    p = subprocess.run([BIN, "validate"], input=b"{}", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert p.returncode == 2 and b"--schema FILE is required" in p.stderr
    rc, _, err = validate("order.json", "{}", "--dialect", "klingon")
    assert rc == 2 and "unknown dialect 'klingon'" in err
    rc, _, err = validate("missing.json", "{}")
    assert rc == 2 and "No such file or directory" in err
