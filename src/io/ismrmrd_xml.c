/* The few ISMRMRD XML header fields fmrecon needs, read with libxml2 + XPath. Element names are
 * matched by local-name() so the ISMRMRD default namespace (or its absence) does not matter. */
#include <libxml/parser.h>
#include <libxml/xpath.h>
#include <stdlib.h>
#include <string.h>

#include "dataset_impl.h"
#include "fmrecon/log.h"

#define E(n) "/*[local-name()='" n "']"

static int xpath_long(xmlXPathContextPtr ctx, const char *expr, long *v)
{
    xmlXPathObjectPtr o = xmlXPathEvalExpression((const xmlChar *)expr, ctx);
    int ok = 0;
    if (o && o->nodesetval && o->nodesetval->nodeNr > 0) {
        xmlChar *s = xmlNodeGetContent(o->nodesetval->nodeTab[0]);
        char *end;
        if (s) {
            *v = strtol((const char *)s, &end, 10);
            while (*end == ' ' || *end == '\n' || *end == '\t' || *end == '\r') end++;
            ok = end != (char *)s && *end == '\0';
        }
        xmlFree(s);
    }
    xmlXPathFreeObject(o);
    return ok;
}

fmr_err fmr_ismrmrd_xml_padding(const char *path, const char *xml, size_t w, size_t *pad_left,
                                size_t *pad_right)
{
    *pad_left = 0;
    *pad_right = w;
    xmlDocPtr doc = xmlReadMemory(xml, (int)strlen(xml), "ismrmrd_header.xml", NULL,
                                  XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    if (!doc) return fmr_error(FMR_ERR_FORMAT, "%s: 'ismrmrd_header' is not well-formed XML", path);
    xmlXPathContextPtr ctx = xmlXPathNewContext(doc);
    long enc_y, center, maximum;
    const char *enc = "(/*[local-name()='ismrmrdHeader']" E("encoding") ")[1]";
    char q1[256], q2[256], q3[256];
    snprintf(q1, sizeof q1, "%s" E("encodedSpace") E("matrixSize") E("y"), enc);
    snprintf(q2, sizeof q2, "%s" E("encodingLimits") E("kspace_encoding_step_1") E("center"), enc);
    snprintf(q3, sizeof q3, "%s" E("encodingLimits") E("kspace_encoding_step_1") E("maximum"), enc);
    int ok = ctx && xpath_long(ctx, q1, &enc_y) && xpath_long(ctx, q2, &center) &&
             xpath_long(ctx, q3, &maximum);
    xmlXPathFreeContext(ctx);
    xmlFreeDoc(doc);
    if (!ok) return FMR_OK; /* no limits given: every column counts as acquired */
    /* bounded first, so the arithmetic below cannot overflow on extreme header values */
    const long lim = 1L << 30;
    if (enc_y < -lim || enc_y > lim || center < -lim || center > lim || maximum < -lim || maximum > lim) {
        fmr_warn("%s: ismrmrd_header encoding limits (matrixSize y %ld, center %ld, maximum %ld) are "
                 "out of range; ignored",
                 path, enc_y, center, maximum);
        return FMR_OK;
    }
    /* fastMRI mri_data.py: padding_left = enc_y // 2 - center, padding_right = left + maximum + 1 */
    long left = enc_y / 2 - center, right = left + maximum + 1;
    if (left < 0 || right > (long)w || left >= right) {
        fmr_warn("%s: ismrmrd_header gives acquired columns [%ld, %ld) outside the k-space width "
                 "%zu; ignored",
                 path, left, right, w);
        return FMR_OK;
    }
    *pad_left = (size_t)left;
    *pad_right = (size_t)right;
    return FMR_OK;
}
