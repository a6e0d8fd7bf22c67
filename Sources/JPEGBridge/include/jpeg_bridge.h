/* JPEG decode/encode through libjpeg with setjmp-based error recovery (Swift cannot longjmp), so a corrupt file
 * becomes an error message instead of libjpeg's default exit(). */
#pragma once
#include <stddef.h>
#include <stdint.h>

/* Decodes to 8-bit grey (channels 1) or RGB (channels 3); CMYK/YCCK are converted to RGB as Pillow does.
 * On success returns 0 and *pixels is malloc'ed (caller frees with free()). On failure returns -1 (-2 when the
 * header declares more than max_pixels pixels, refused before decoding) and writes a message into err. Call from
 * any thread; no state is shared. */
int kd_jpeg_decode(const uint8_t *data, size_t size, uint64_t max_pixels, uint8_t **pixels, int *width, int *height,
                   int *channels, char *err, size_t err_size);

/* Encodes 8-bit grey (1) or RGB (3) pixels; *out is malloc'ed (caller frees). Returns 0, or -1 with err set. */
int kd_jpeg_encode(const uint8_t *pixels, int width, int height, int channels, int quality, uint8_t **out,
                   size_t *out_size, char *err, size_t err_size);
