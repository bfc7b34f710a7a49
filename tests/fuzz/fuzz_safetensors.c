/* libFuzzer target for the safetensors parser: any byte string must be either accepted with every
 * tensor readable inside the buffer, or rejected with an error; never a crash or an out-of-bounds
 * access (built with ASan and UBSan). */
#include <stdint.h>
#include <stdlib.h>

#include "fmrecon/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fmr_safetensors *st;
    if (fmr_st_open_buffer(data, size, "fuzz", &st) != FMR_OK) return 0;
    for (size_t i = 0; i < fmr_st_count(st); i++) {
        const fmr_st_tensor *t = fmr_st_at(st, i);
        float *out = malloc((t->numel ? t->numel : 1) * sizeof *out);
        if (out) fmr_st_read_f32(st, t->name, -1, NULL, out);
        free(out);
        (void)fmr_st_metadata(st, "format");
    }
    fmr_st_close(&st);
    return 0;
}
