/* Exporting a reconstruction (an fmrecon HDF5 result) to formats other tools read: NIfTI, DICOM,
 * cine GIFs and a labelled PNG montage (and more formats through the same table, see
 * src/export/exporters.h). Every exporter writes under temporary names in the output folder and
 * renames when complete, so a failed export leaves nothing that looks finished. */
#ifndef FMRECON_EXPORT_H
#define FMRECON_EXPORT_H

#include "fmrecon/error.h"
#include "fmrecon/visibility.h"

#ifdef __cplusplus
extern "C" {
#endif
FMR_API_BEGIN

typedef struct fmr_export_options {
    int write_complex;   /* NIfTI: also the complex image (needs 'image' in the result, recon --complex) */
    int per_slice;       /* NIfTI: one file per slice even when the slices form a volume */
    int enhanced;        /* DICOM: one Enhanced MR multi-frame instance per slice */
    const char *name;    /* base name of the outputs (default: the input's name without .h5) */
} fmr_export_options;

void fmr_export_options_defaults(fmr_export_options *opt);

/* Exports result file in_path to every format of the comma-separated list formats, into out_dir
 * (created if missing). Not collective: call it on one rank. */
fmr_err fmr_export_file(const char *in_path, const char *formats, const char *out_dir,
                        const fmr_export_options *opt);

/* 1 if name is a known export format. */
int fmr_export_format_known(const char *name);

/* Comma-separated list of the known formats, for --help and messages. */
const char *fmr_export_format_list(void);

FMR_API_END
#ifdef __cplusplus
}
#endif
#endif
