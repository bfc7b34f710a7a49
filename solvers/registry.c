#include <string.h>

#include "fmrecon/recon.h"

extern const fmr_method_ops fmr_method_zf;

static const fmr_method_ops *const methods_[] = {&fmr_method_zf, NULL};

const fmr_method_ops *const *fmr_method_list(void)
{
    return methods_;
}

const fmr_method_ops *fmr_method_find(const char *name)
{
    for (int i = 0; methods_[i]; i++)
        if (!strcmp(methods_[i]->name, name)) return methods_[i];
    return NULL;
}
