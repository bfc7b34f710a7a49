/* Inputs this process has read, so an output can never be one of them (private). */
#ifndef FMR_IO_OUTCHECK_H
#define FMR_IO_OUTCHECK_H

/* Remembers path's file (device and inode, following links) as an input of this process. */
void fmr_input_register(const char *path);

#endif
