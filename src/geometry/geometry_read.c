/* Reading an fmr_geometry from the inputs: fmrecon's own 'geometry' attribute, the ISMRMRD XML
 * header (ISMRMRD files and fastMRI's 'ismrmrd_header') and ISMRMRD acquisition headers. */
#include <ctype.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/xpath.h>

#include "geometry/geometry_impl.h"
#include "io/dataset_impl.h"
#include "io/h5util.h"
#include "fmrecon/log.h"

/* A string attribute of any length (fixed or variable); *out malloc'd; 0 if absent. */
static int read_string_attr(hid_t loc, const char *name, char **out)
{
    *out = NULL;
    if (H5Aexists(loc, name) <= 0) return 0;
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
    if (a < 0) return 0;
    hid_t ft = H5Aget_type(a);
    int ok = 0;
    if (H5Tget_class(ft) == H5T_STRING) {
        if (H5Tis_variable_str(ft) > 0) {
            hid_t mt = H5Tcopy(H5T_C_S1);
            H5Tset_size(mt, H5T_VARIABLE);
            H5Tset_cset(mt, H5Tget_cset(ft)); /* HDF5 does not convert between ASCII and UTF-8 */
            char *v = NULL;
            if (H5Aread(a, mt, &v) >= 0 && v) {
                *out = strdup(v);
                H5free_memory(v);
                ok = *out != NULL;
            }
            H5Tclose(mt);
        } else {
            size_t n = H5Tget_size(ft);
            if (n > 0 && n < (64u << 20)) {
                char *buf = calloc(n + 1, 1);
                hid_t mt = H5Tcopy(H5T_C_S1);
                H5Tset_size(mt, n + 1);
                H5Tset_cset(mt, H5Tget_cset(ft));
                if (buf && H5Aread(a, mt, buf) >= 0) *out = buf, ok = 1;
                else free(buf);
                H5Tclose(mt);
            }
        }
    }
    H5Tclose(ft);
    H5Aclose(a);
    return ok;
}

fmr_err fmr_geometry_read_h5(const char *path, fmr_geometry **g)
{
    *g = NULL;
    hid_t f;
    FMR_TRY(fmr_h5_open_read(path, &f));
    char *json = NULL;
    int have = read_string_attr(f, "geometry", &json);
    H5Fclose(f);
    if (!have) return fmr_error(FMR_ERR_FORMAT, "%s: no 'geometry' attribute", path);
    fmr_err err = fmr_geometry_from_json(path, json, g);
    free(json);
    return err;
}

/* ---- ISMRMRD XML ----------------------------------------------------------------------------- */

#define E(n) "/*[local-name()='" n "']"
#define ROOT "/*[local-name()='ismrmrdHeader']"

static int xpath_text(xmlXPathContextPtr ctx, const char *expr, char *buf, size_t n)
{
    xmlXPathObjectPtr o = xmlXPathEvalExpression((const xmlChar *)expr, ctx);
    int ok = 0;
    if (o && o->nodesetval && o->nodesetval->nodeNr > 0) {
        xmlChar *s = xmlNodeGetContent(o->nodesetval->nodeTab[0]);
        if (s) {
            const char *p = (const char *)s;
            while (isspace((unsigned char)*p)) p++;
            snprintf(buf, n, "%s", p);
            size_t l = strlen(buf);
            while (l && isspace((unsigned char)buf[l - 1])) buf[--l] = '\0';
            ok = l > 0;
        }
        xmlFree(s);
    }
    xmlXPathFreeObject(o);
    return ok;
}

static int xpath_num(xmlXPathContextPtr ctx, const char *expr, double *v)
{
    char buf[64], *end;
    if (!xpath_text(ctx, expr, buf, sizeof buf)) return 0;
    double r = strtod(buf, &end);
    if (end == buf || *end || !isfinite(r)) return 0;
    *v = r;
    return 1;
}

/* ISMRMRD xs:date / xs:time to DICOM DA / TM: drop the separators. */
static void strip_chars(char *s, char c)
{
    char *d = s;
    for (; *s; s++)
        if (*s != c) *d++ = *s;
    *d = '\0';
}

fmr_err fmr_geometry_from_ismrmrd_xml(const char *what, const char *xml, fmr_geometry *g)
{
    xmlDocPtr doc = xmlReadMemory(xml, (int)strlen(xml), "ismrmrd_header.xml", NULL,
                                  XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    if (!doc) return fmr_error(FMR_ERR_FORMAT, "%s: the ISMRMRD header is not well-formed XML", what);
    xmlXPathContextPtr ctx = xmlXPathNewContext(doc);
    if (!ctx) {
        xmlFreeDoc(doc);
        return fmr_error(FMR_ERR_NOMEM, "cannot parse the ISMRMRD header");
    }
    const char *enc = "(" ROOT E("encoding") ")[1]";
    char q[320];
    double ex = 0, ey = 0, ez = 0, fx = 0, fy = 0, fz = 0;
#define Q(tail, var) (snprintf(q, sizeof q, "%s" tail, enc), xpath_num(ctx, q, &(var)))
    int have_xy = Q(E("encodedSpace") E("matrixSize") E("x"), ex) && Q(E("encodedSpace") E("matrixSize") E("y"), ey) &&
                  Q(E("encodedSpace") E("fieldOfView_mm") E("x"), fx) && Q(E("encodedSpace") E("fieldOfView_mm") E("y"), fy);
    int have_z = Q(E("encodedSpace") E("matrixSize") E("z"), ez) && Q(E("encodedSpace") E("fieldOfView_mm") E("z"), fz);
#undef Q
    /* The pixel size is the encoded FOV over the encoded matrix: removing the readout
     * oversampling crops pixels, it does not change their size. */
    if (have_xy && ex >= 1 && ey >= 1 && fx > 0 && fy > 0) {
        g->spacing_h = fx / ex, g->spacing_w = fy / ey;
        snprintf(g->src_spacing, FMR_GEO_TEXT, "read: ISMRMRD header encodedSpace fieldOfView_mm / matrixSize");
    }
    if (have_z && ez >= 1 && fz > 0) {
        g->slice_thickness = fz / ez;
        g->slice_spacing = g->slice_thickness;
        snprintf(g->src_thickness, FMR_GEO_TEXT, "read: ISMRMRD header encodedSpace fieldOfView_mm z");
    }
    if (xpath_text(ctx, ROOT E("measurementInformation") E("patientPosition"), g->patient_position, sizeof g->patient_position))
        snprintf(g->src_patient_position, FMR_GEO_TEXT, "read: ISMRMRD header measurementInformation");
    static const struct {
        fmr_subject_field f;
        const char *xp;
        char strip;
    } map[] = {
        {FMR_SUBJ_PATIENT_NAME, ROOT E("subjectInformation") E("patientName"), 0},
        {FMR_SUBJ_PATIENT_ID, ROOT E("subjectInformation") E("patientID"), 0},
        {FMR_SUBJ_PATIENT_BIRTH_DATE, ROOT E("subjectInformation") E("patientBirthdate"), '-'},
        {FMR_SUBJ_PATIENT_SEX, ROOT E("subjectInformation") E("patientGender"), 0},
        {FMR_SUBJ_STUDY_DATE, ROOT E("studyInformation") E("studyDate"), '-'},
        {FMR_SUBJ_STUDY_TIME, ROOT E("studyInformation") E("studyTime"), ':'},
        {FMR_SUBJ_STUDY_ID, ROOT E("studyInformation") E("studyID"), 0},
        {FMR_SUBJ_ACCESSION_NUMBER, ROOT E("studyInformation") E("accessionNumber"), 0},
        {FMR_SUBJ_STUDY_DESCRIPTION, ROOT E("studyInformation") E("studyDescription"), 0},
        {FMR_SUBJ_REFERRING_PHYSICIAN, ROOT E("studyInformation") E("referringPhysicianName"), 0},
        {FMR_SUBJ_STUDY_UID, ROOT E("studyInformation") E("studyInstanceUID"), 0},
        {FMR_SUBJ_FRAME_OF_REFERENCE_UID, ROOT E("measurementInformation") E("frameOfReferenceUID"), 0},
        {FMR_SUBJ_PROTOCOL, ROOT E("measurementInformation") E("protocolName"), 0},
        {FMR_SUBJ_MANUFACTURER, ROOT E("acquisitionSystemInformation") E("systemVendor"), 0},
        {FMR_SUBJ_MODEL, ROOT E("acquisitionSystemInformation") E("systemModel"), 0},
        {FMR_SUBJ_INSTITUTION, ROOT E("acquisitionSystemInformation") E("institutionName"), 0},
        {FMR_SUBJ_FIELD_STRENGTH, ROOT E("acquisitionSystemInformation") E("systemFieldStrength_T"), 0},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (xpath_text(ctx, map[i].xp, g->subject[map[i].f], sizeof g->subject[0]) && map[i].strip)
            strip_chars(g->subject[map[i].f], map[i].strip);
    xmlXPathFreeContext(ctx);
    xmlFreeDoc(doc);
    return FMR_OK;
}

/* ---- ISMRMRD acquisition headers ------------------------------------------------------------- */

typedef struct {
    uint16_t e1, slice, phase, repetition;
} gidx;

typedef struct {
    uint64_t flags;
    uint32_t physio[3];
    float position[3], read_dir[3], phase_dir[3], slice_dir[3];
    gidx idx;
} ghead;

typedef struct {
    ghead head;
} gacq;

static hid_t vec_type(hid_t base, hsize_t n)
{
    return H5Tarray_create2(base, 1, &n);
}

static hid_t make_type(void)
{
    hid_t idx = H5Tcreate(H5T_COMPOUND, sizeof(gidx));
    H5Tinsert(idx, "kspace_encode_step_1", HOFFSET(gidx, e1), H5T_NATIVE_UINT16);
    H5Tinsert(idx, "slice", HOFFSET(gidx, slice), H5T_NATIVE_UINT16);
    H5Tinsert(idx, "phase", HOFFSET(gidx, phase), H5T_NATIVE_UINT16);
    H5Tinsert(idx, "repetition", HOFFSET(gidx, repetition), H5T_NATIVE_UINT16);
    hid_t f3 = vec_type(H5T_NATIVE_FLOAT, 3), u3 = vec_type(H5T_NATIVE_UINT32, 3);
    hid_t head = H5Tcreate(H5T_COMPOUND, sizeof(ghead));
    H5Tinsert(head, "flags", HOFFSET(ghead, flags), H5T_NATIVE_UINT64);
    H5Tinsert(head, "physiology_time_stamp", HOFFSET(ghead, physio), u3);
    H5Tinsert(head, "position", HOFFSET(ghead, position), f3);
    H5Tinsert(head, "read_dir", HOFFSET(ghead, read_dir), f3);
    H5Tinsert(head, "phase_dir", HOFFSET(ghead, phase_dir), f3);
    H5Tinsert(head, "slice_dir", HOFFSET(ghead, slice_dir), f3);
    H5Tinsert(head, "idx", HOFFSET(ghead, idx), idx);
    hid_t acq = H5Tcreate(H5T_COMPOUND, sizeof(gacq));
    H5Tinsert(acq, "head", 0, head);
    H5Tclose(idx);
    H5Tclose(f3);
    H5Tclose(u3);
    H5Tclose(head);
    return acq;
}

#define HAS(flags, n) (((flags) >> ((n) - 1)) & 1ull)
static int skipped(uint64_t f)
{
    /* noise, navigation, phase correction, HP/RT feedback, dummy scans: not image lines */
    return HAS(f, 19) || HAS(f, 23) || HAS(f, 24) || HAS(f, 26) || HAS(f, 27) || HAS(f, 28);
}

static double norm3(const double v[3])
{
    return sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static fmr_err from_acquisitions(const char *path, hid_t f, long e1_center, fmr_geometry *g)
{
    hid_t d = H5Dopen2(f, "dataset/data", H5P_DEFAULT);
    if (d < 0) return fmr_error(FMR_ERR_FORMAT, "%s: /dataset/data is not readable", path);
    hid_t sp = H5Dget_space(d);
    hssize_t n = H5Sget_simple_extent_npoints(sp);
    H5Sclose(sp);
    fmr_err err = FMR_OK;
    gacq *a = n > 0 ? malloc((size_t)n * sizeof *a) : NULL;
    hid_t t = make_type();
    if (!a) err = fmr_error(FMR_ERR_NOMEM, "%s: cannot allocate acquisition headers", path);
    else if (H5Dread(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, a) < 0)
        err = fmr_error(FMR_ERR_FORMAT, "%s: acquisition headers lack position/direction fields", path);
    H5Tclose(t);
    H5Dclose(d);
    if (err) {
        free(a);
        return err;
    }
    int any_phase = 0, any_rep = 0;
    for (hssize_t i = 0; i < n; i++)
        if (!skipped(a[i].head.flags)) any_phase |= a[i].head.idx.phase > 0, any_rep |= a[i].head.idx.repetition > 0;
    const int use_rep = !any_phase && any_rep;
    /* per slice: the centre line of frame 0 (else its first line); per frame: the same in slice 0 */
    long *ref_slice = malloc(g->slices * sizeof *ref_slice), *ref_frame = malloc(g->frames * sizeof *ref_frame);
    if (!ref_slice || !ref_frame) err = fmr_error(FMR_ERR_NOMEM, "cannot allocate geometry scratch");
    for (size_t z = 0; !err && z < g->slices; z++) ref_slice[z] = -1;
    for (size_t k = 0; !err && k < g->frames; k++) ref_frame[k] = -1;
    for (hssize_t i = 0; !err && i < n; i++) {
        const ghead *h = &a[i].head;
        if (skipped(h->flags)) continue;
        size_t fr = use_rep ? h->idx.repetition : h->idx.phase, z = h->idx.slice;
        int centre = (long)h->idx.e1 == e1_center;
        if (fr == 0 && z < g->slices && (ref_slice[z] < 0 || (centre && (long)a[ref_slice[z]].head.idx.e1 != e1_center)))
            ref_slice[z] = (long)i;
        if (z == 0 && fr < g->frames && (ref_frame[fr] < 0 || (centre && (long)a[ref_frame[fr]].head.idx.e1 != e1_center)))
            ref_frame[fr] = (long)i;
    }
    int pos_ok = !err;
    for (size_t z = 0; pos_ok && z < g->slices; z++) {
        if (ref_slice[z] < 0) {
            pos_ok = 0;
            break;
        }
        const ghead *h = &a[ref_slice[z]].head;
        double c[3], rd[3], pd[3];
        for (int i = 0; i < 3; i++) c[i] = h->position[i], rd[i] = h->read_dir[i], pd[i] = h->phase_dir[i];
        double lr = norm3(rd), lp = norm3(pd);
        if (lr < 0.5 || lp < 0.5 || !isfinite(lr + lp + norm3(c))) {
            pos_ok = 0;
            break;
        }
        fmr_slice_geometry *s = &g->slice[z];
        for (int i = 0; i < 3; i++) {
            s->dir_h[i] = rd[i] / lr, s->dir_w[i] = pd[i] / lp;
            /* the centred FFT puts the FOV centre (position) at pixel (h/2, w/2) */
            s->position[i] = c[i] - (double)(g->h / 2) * g->spacing_h * s->dir_h[i] -
                             (double)(g->w / 2) * g->spacing_w * s->dir_w[i];
        }
    }
    if (pos_ok) {
        snprintf(g->src_position, FMR_GEO_TEXT, "read: ISMRMRD acquisition position (FOV centre = pixel h/2, w/2)");
        snprintf(g->src_orientation, FMR_GEO_TEXT, "read: ISMRMRD acquisition read_dir (h), phase_dir (w)");
        /* slice indices may be in acquisition (interleaved) order: the spacing is the smallest
         * distance between two slice locations along the normal */
        double best = 0, *loc = malloc(g->slices * sizeof *loc);
        for (size_t z = 0; loc && z < g->slices; z++) loc[z] = fmr_geometry_slice_location(g, z);
        if (loc) qsort(loc, g->slices, sizeof *loc, cmp_double);
        for (size_t z = 1; loc && z < g->slices; z++)
            if (loc[z] - loc[z - 1] > 1e-3 && (best == 0 || loc[z] - loc[z - 1] < best)) best = loc[z] - loc[z - 1];
        free(loc);
        if (best > 0) g->slice_spacing = best;
    } else if (!err) {
        fmr_warn("%s: acquisition headers give no usable position/direction; geometry assumed", path);
    }
    /* Physiology time stamps count scanner ticks since the trigger; Siemens' tick is 2.5 ms
     * (the unit the ISMRMRD converters pass through), other vendors' are taken as 1 ms. */
    int trig_ok = !err, any = 0;
    for (size_t k = 0; trig_ok && k < g->frames; k++) {
        if (ref_frame[k] < 0) trig_ok = 0;
        else any |= a[ref_frame[k]].head.physio[0] != 0;
    }
    if (trig_ok && any) {
        int siemens = strstr(g->subject[FMR_SUBJ_MANUFACTURER], "SIEMENS") || strstr(g->subject[FMR_SUBJ_MANUFACTURER], "Siemens");
        double tick = siemens ? 2.5 : 1.0;
        for (size_t k = 0; k < g->frames; k++) g->trigger_ms[k] = tick * a[ref_frame[k]].head.physio[0];
        snprintf(g->src_trigger, FMR_GEO_TEXT, "read: ISMRMRD physiology_time_stamp[0] x %.1f ms (%s)", tick,
                 siemens ? "Siemens tick" : "tick assumed 1 ms");
    }
    free(ref_slice);
    free(ref_frame);
    free(a);
    return err;
}

/* ---- per dataset --------------------------------------------------------------------------- */

static fmr_err read_xml(hid_t f, const char *name, char **xml)
{
    *xml = NULL;
    if (!fmr_h5_exists(f, name)) return FMR_OK;
    if (fmr_h5_read_string_dataset(f, name, xml)) return FMR_OK;
    /* ISMRMRD stores /dataset/xml as a 1-element variable-length string array */
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    if (d < 0) return FMR_OK;
    hid_t st = H5Tcopy(H5T_C_S1);
    H5Tset_size(st, H5T_VARIABLE);
    hid_t ft = H5Dget_type(d);
    H5Tset_cset(st, H5Tget_cset(ft));
    H5Tclose(ft);
    hid_t sp = H5Dget_space(d);
    if (H5Sget_simple_extent_npoints(sp) == 1) {
        char *v = NULL;
        if (H5Dread(d, st, H5S_ALL, H5S_ALL, H5P_DEFAULT, &v) >= 0 && v) {
            *xml = strdup(v);
            H5free_memory(v);
        }
    }
    H5Sclose(sp);
    H5Tclose(st);
    H5Dclose(d);
    return FMR_OK;
}

static long xml_e1_center(const char *xml, long dflt)
{
    xmlDocPtr doc = xmlReadMemory(xml, (int)strlen(xml), "h.xml", NULL, XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    if (!doc) return dflt;
    xmlXPathContextPtr ctx = xmlXPathNewContext(doc);
    double v = (double)dflt;
    if (ctx) xpath_num(ctx, "(" ROOT E("encoding") ")[1]" E("encodingLimits") E("kspace_encoding_step_1") E("center"), &v);
    xmlXPathFreeContext(ctx);
    xmlFreeDoc(doc);
    return (long)v;
}

fmr_err fmr_dataset_geometry_init(fmr_dataset *ds, const fmr_open_options *opt)
{
    const fmr_dataset_info *in = &ds->info;
    FMR_TRY(fmr_geometry_create(in->slices, in->frames, in->h, in->w, &ds->geo));
    hid_t f;
    fmr_err err = FMR_OK;
    if (in->format == FMR_FORMAT_FASTMRI || in->format == FMR_FORMAT_ISMRMRD) {
        err = fmr_h5_open_read(ds->path, &f);
        if (err) return err;
        char *json = NULL;
        const int had_json = read_string_attr(f, "geometry", &json);
        if (had_json) {
            /* an fmrecon file (undersample, simulate --from-dicom): its geometry as recorded */
            fmr_geometry *g = NULL;
            err = fmr_geometry_from_json(ds->path, json, &g);
            if (!err && (g->slices != in->slices || g->frames != in->frames || g->h != in->h || g->w != in->w)) {
                err = fmr_error(FMR_ERR_FORMAT, "%s: 'geometry' is for %zu slices x %zu frames x %zux%zu, the data has %zu x %zu x %zux%zu",
                                ds->path, g->slices, g->frames, g->h, g->w, in->slices, in->frames, in->h, in->w);
                fmr_geometry_free(&g);
            }
            if (g) {
                fmr_geometry_free(&ds->geo);
                ds->geo = g;
            }
        }
        free(json);
        if (!err) {
            const char *name = in->format == FMR_FORMAT_ISMRMRD ? "dataset/xml" : "ismrmrd_header";
            err = read_xml(f, name, &ds->header_xml);
        }
        if (!err && ds->header_xml && !had_json) {
            err = fmr_geometry_from_ismrmrd_xml(ds->path, ds->header_xml, ds->geo);
            if (!err && in->format == FMR_FORMAT_ISMRMRD)
                err = from_acquisitions(ds->path, f, xml_e1_center(ds->header_xml, (long)in->w / 2), ds->geo);
        }
        H5Fclose(f);
    }
    if (!err && strncmp(ds->geo->src_position, "read", 4)) fmr_geometry_restack(ds->geo);
    if (!err && opt) err = fmr_geometry_override(ds->geo, &opt->geometry);
    return err;
}
