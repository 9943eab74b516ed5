/*
 * tests/unit/test_s3_error.c — s3_xml_text: the Code and Message of S3
 * error documents, and every way a document can be odd (missing or
 * unclosed elements, text too long, control characters, NULs).
 */
#include "tests/unit/unit.h"
#include <string.h>

#include "store/s3_error.h"

#define DOC(s) (s), sizeof(s) - 1

static const char error_doc[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    "<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message>"
    "<Key>bart</Key><RequestId>4442587FB7D0A2F9</RequestId></Error>";

static void test_code_and_message(void)
{
    char out[256];

    s3_xml_text(DOC(error_doc), "Code", out, sizeof out);
    CU_ASSERT_STRING_EQUAL(out, "NoSuchKey");
    s3_xml_text(DOC(error_doc), "Message", out, sizeof out);
    CU_ASSERT_STRING_EQUAL(out, "The specified key does not exist.");
    s3_xml_text(DOC(error_doc), "RequestId", out, sizeof out);
    CU_ASSERT_STRING_EQUAL(out, "4442587FB7D0A2F9");
    /* the first element wins; an empty one is "" */
    s3_xml_text(DOC("<Code>A</Code><Code>B</Code>"), "Code", out, sizeof out);
    CU_ASSERT_STRING_EQUAL(out, "A");
    s3_xml_text(DOC("<Code></Code>"), "Code", out, sizeof out);
    CU_ASSERT_STRING_EQUAL(out, "");
    /* a closing tag before the opening one does not count */
    s3_xml_text(DOC("</Code><Code>C</Code>"), "Code", out, sizeof out);
    CU_ASSERT_STRING_EQUAL(out, "C");
}

static void test_absent(void)
{
    char out[64];

    memcpy(out, "junk", 5);
    s3_xml_text(NULL, 10, "Code", out, sizeof out);
    CU_ASSERT_STRING_EQUAL(out, "");
    memcpy(out, "junk", 5);
    s3_xml_text("<Code>x</Code>", 0, "Code", out, sizeof out);
    CU_ASSERT_STRING_EQUAL(out, "");
    s3_xml_text(DOC("<Error><Message>m</Message></Error>"), "Code", out, sizeof out);
    CU_ASSERT_STRING_EQUAL(out, "");
    s3_xml_text(DOC("<Code>NoSuchKey"), "Code", out, sizeof out); /* never closed */
    CU_ASSERT_STRING_EQUAL(out, "");
    s3_xml_text(DOC("<code>x</code>"), "Code", out, sizeof out); /* case matters */
    CU_ASSERT_STRING_EQUAL(out, "");
    s3_xml_text(DOC("<Code>x</Code>"), "Cod", out, sizeof out);
    CU_ASSERT_STRING_EQUAL(out, "");
    /* the length bounds the search: the closing tag lies past it */
    s3_xml_text("<Code>x</Code>", 10, "Code", out, sizeof out);
    CU_ASSERT_STRING_EQUAL(out, "");
}

static void test_cut_and_cleaned(void)
{
    char out[8], one[1];

    s3_xml_text(DOC("<Code>SignatureDoesNotMatch</Code>"), "Code", out, sizeof out);
    CU_ASSERT_STRING_EQUAL(out, "Signatu");
    memcpy(one, "x", 1);
    s3_xml_text(DOC("<Code>x</Code>"), "Code", one, sizeof one);
    CU_ASSERT_EQUAL(one[0], '\0');
    s3_xml_text(DOC("<Code>a\nb\tc\x7f</Code>"), "Code", out, sizeof out);
    CU_ASSERT_STRING_EQUAL(out, "a b c ");
}

static void test_nuls(void)
{
    static const char doc[] = "\0\0<Code>Ab\0cd</Code>";
    char out[16];

    /* NULs before the element are searched through; one inside ends the text */
    s3_xml_text(doc, sizeof doc - 1, "Code", out, sizeof out);
    CU_ASSERT_STRING_EQUAL(out, "Ab");
}

int main(void)
{
    static const struct unit_test tests[] = {
        {"Code, Message and other elements", test_code_and_message},
        {"absent, unclosed or out-of-range elements give \"\"", test_absent},
        {"long text is cut, control characters become spaces", test_cut_and_cleaned},
        {"NULs in the document", test_nuls},
        {NULL, NULL},
    };
    return unit_run("s3_error", tests, 60);
}
