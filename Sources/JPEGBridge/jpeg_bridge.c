#include "jpeg_bridge.h"
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jpeglib.h>

struct bridge_error {
    struct jpeg_error_mgr mgr;
    jmp_buf jump;
    char *msg;
    size_t msg_size;
};

static void on_error(j_common_ptr cinfo) {
    struct bridge_error *e = (struct bridge_error *)cinfo->err;
    char buf[JMSG_LENGTH_MAX];
    (*cinfo->err->format_message)(cinfo, buf);
    snprintf(e->msg, e->msg_size, "%s", buf);
    longjmp(e->jump, 1);
}

/* Corrupt-data warnings are errors for us: a truncated file must not decode as a grey-filled image. */
static void on_warning(j_common_ptr cinfo, int level) {
    if (level < 0) on_error(cinfo);
}

int kd_jpeg_decode(const uint8_t *data, size_t size, uint64_t max_pixels, uint8_t **pixels, int *width, int *height,
                   int *channels, char *err, size_t err_size) {
    struct jpeg_decompress_struct cinfo;
    struct bridge_error jerr;
    uint8_t *volatile buf = NULL;
    uint8_t *volatile row = NULL;
    cinfo.err = jpeg_std_error(&jerr.mgr);
    jerr.mgr.error_exit = on_error;
    jerr.mgr.emit_message = on_warning;
    jerr.msg = err;
    jerr.msg_size = err_size;
    if (setjmp(jerr.jump)) {
        jpeg_destroy_decompress(&cinfo);
        free(buf);
        free(row);
        return -1;
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, data, (unsigned long)size);
    jpeg_read_header(&cinfo, TRUE);
    /* The header's size, checked before a pixel is decoded or a byte allocated for it. */
    if ((uint64_t)cinfo.image_width * cinfo.image_height > max_pixels) {
        snprintf(err, err_size, "%ux%u pixels exceed the limit of %llu", cinfo.image_width, cinfo.image_height,
                 (unsigned long long)max_pixels);
        jpeg_destroy_decompress(&cinfo);
        return -2;
    }
    int cmyk = cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK;
    if (cmyk) cinfo.out_color_space = JCS_CMYK;
    else if (cinfo.jpeg_color_space == JCS_GRAYSCALE) cinfo.out_color_space = JCS_GRAYSCALE;
    else cinfo.out_color_space = JCS_RGB;
    jpeg_start_decompress(&cinfo);
    int w = (int)cinfo.output_width, h = (int)cinfo.output_height, in_ch = cinfo.output_components;
    int out_ch = cmyk ? 3 : in_ch;
    buf = malloc((size_t)w * h * out_ch);
    row = malloc((size_t)w * in_ch);
    if (!buf || !row) {
        snprintf(err, err_size, "out of memory for a %dx%d image", w, h);
        jpeg_destroy_decompress(&cinfo);
        free(buf);
        free(row);
        return -1;
    }
    /* Adobe CMYK JPEGs store inverted values (Pillow's "CMYK;I" raw mode). */
    int inverted = cmyk && cinfo.saw_Adobe_marker;
    while (cinfo.output_scanline < cinfo.output_height) {
        int y = (int)cinfo.output_scanline;
        JSAMPROW rows[1] = {row};
        jpeg_read_scanlines(&cinfo, rows, 1);
        uint8_t *dst = buf + (size_t)y * w * out_ch;
        if (!cmyk) {
            memcpy(dst, row, (size_t)w * in_ch);
            continue;
        }
        for (int x = 0; x < w; x++) {
            int c = row[4 * x], m = row[4 * x + 1], yy = row[4 * x + 2], k = row[4 * x + 3];
            if (inverted) { c = 255 - c; m = 255 - m; yy = 255 - yy; k = 255 - k; }
            /* Pillow cmyk2rgb: channel = (255 - k) - channel * (255 - k) / 255, with MULDIV255 rounding. */
            int nk = 255 - k;
            int v[3] = {c, m, yy};
            for (int i = 0; i < 3; i++) {
                int t = v[i] * nk + 128;
                int p = (t + (t >> 8)) >> 8;
                int r = nk - p;
                dst[3 * x + i] = (uint8_t)(r < 0 ? 0 : r > 255 ? 255 : r);
            }
        }
    }
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    free(row);
    *pixels = buf;
    *width = w;
    *height = h;
    *channels = out_ch;
    return 0;
}

int kd_jpeg_encode(const uint8_t *pixels, int width, int height, int channels, int quality, uint8_t **out,
                   size_t *out_size, char *err, size_t err_size) {
    struct jpeg_compress_struct cinfo;
    struct bridge_error jerr;
    unsigned char *volatile mem = NULL;
    unsigned long mem_size = 0;
    cinfo.err = jpeg_std_error(&jerr.mgr);
    jerr.mgr.error_exit = on_error;
    jerr.msg = err;
    jerr.msg_size = err_size;
    if (setjmp(jerr.jump)) {
        jpeg_destroy_compress(&cinfo);
        free(mem);
        return -1;
    }
    jpeg_create_compress(&cinfo);
    jpeg_mem_dest(&cinfo, (unsigned char **)&mem, &mem_size);
    cinfo.image_width = (JDIMENSION)width;
    cinfo.image_height = (JDIMENSION)height;
    cinfo.input_components = channels;
    cinfo.in_color_space = channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_set_defaults(&cinfo);
    jpeg_set_quality(&cinfo, quality, TRUE);
    jpeg_start_compress(&cinfo, TRUE);
    while (cinfo.next_scanline < cinfo.image_height) {
        JSAMPROW row = (JSAMPROW)(pixels + (size_t)cinfo.next_scanline * width * channels);
        jpeg_write_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_compress(&cinfo);
    jpeg_destroy_compress(&cinfo);
    *out = mem;
    *out_size = mem_size;
    return 0;
}
