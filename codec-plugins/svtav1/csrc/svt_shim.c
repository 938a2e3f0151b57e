/*
 * s6-codec-svtav1 C shim.
 *
 * EbSvtAv1EncConfiguration is a ~1.7 KiB struct whose layout changes between
 * SVT-AV1 releases (fields are added and deprecated ones removed). Rather than
 * mirroring it in Rust, this file is compiled against the installed header and
 * fills it from the small flat S6SvtParams below, so the configuration layout
 * is always the one of the header the library was installed with.
 *
 * It also reports the layout of the two small structs the Rust side does
 * mirror (EbBufferHeaderType, EbSvtIOFormat) so a unit test can check them.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <EbSvtAv1Enc.h>

/* Keep in sync with `ffi::Params` in src/ffi.rs. */
typedef struct S6SvtParams {
    uint32_t width;
    uint32_t height;
    uint32_t fps_num;
    uint32_t fps_den;
    int32_t  preset;       /* enc_mode, -2..13 */
    int32_t  crf;          /* qp for CRF, 1..63 */
    int32_t  intra_period; /* frames between keyframes minus one; -1 = none */
    uint32_t threads;      /* logical_processors; 0 = all */
    uint32_t film_grain;   /* film_grain_denoise_strength, 0 = off */
    uint8_t  low_delay;    /* 1 = low-delay prediction, no look-ahead */
} S6SvtParams;

/*
 * Creates a handle, applies `p` on top of the library defaults, initialises
 * the encoder (this starts its worker threads) and stores the handle in
 * `*out`. On failure nothing is left allocated and the SVT error code is
 * returned; `*stage` says which call failed (1 init_handle, 2 set_parameter,
 * 3 init).
 */
int32_t s6_svt_open(const S6SvtParams *p, EbComponentType **out, int32_t *stage) {
    EbComponentType *handle = NULL;
    EbSvtAv1EncConfiguration cfg;
    memset(&cfg, 0, sizeof(cfg));
    *out = NULL;

    EbErrorType e = svt_av1_enc_init_handle(&handle, NULL, &cfg);
    if (e != EB_ErrorNone || handle == NULL) {
        *stage = 1;
        return e != EB_ErrorNone ? (int32_t)e : (int32_t)EB_ErrorUndefined;
    }

    cfg.source_width           = p->width;
    cfg.source_height          = p->height;
    cfg.frame_rate_numerator   = p->fps_num;
    cfg.frame_rate_denominator = p->fps_den;
    cfg.encoder_bit_depth      = 8;
    cfg.encoder_color_format   = EB_YUV420;
    cfg.enc_mode               = (int8_t)p->preset;
    /* CRF: rate control 0 with adaptive quantisation on (CQP would be aq 0). */
    cfg.rate_control_mode            = SVT_AV1_RC_MODE_CQP_OR_CRF;
    cfg.qp                           = (uint32_t)p->crf;
    cfg.enable_adaptive_quantization = 2;
    /* Closed GOP: every intra refresh is a KEY_FRAME (random access point). */
    cfg.intra_period_length = p->intra_period;
    cfg.intra_refresh_type  = SVT_AV1_KF_REFRESH;
    /* Honour pic_type = EB_AV1_KEY_PICTURE on input buffers (SVT 1.4 only
     * supports this with the random-access structure). */
    cfg.force_key_frames = p->low_delay ? 0 : 1;
    cfg.logical_processors = p->threads;
    cfg.pin_threads        = 0;
    cfg.film_grain_denoise_strength = p->film_grain;
    if (p->low_delay) {
        cfg.pred_structure      = SVT_AV1_PRED_LOW_DELAY_B;
        cfg.look_ahead_distance = 0;
        cfg.enable_tpl_la       = 0;
        cfg.scene_change_detection = 0;
    }

    e = svt_av1_enc_set_parameter(handle, &cfg);
    if (e != EB_ErrorNone) {
        *stage = 2;
        svt_av1_enc_deinit_handle(handle);
        return (int32_t)e;
    }
    e = svt_av1_enc_init(handle);
    if (e != EB_ErrorNone) {
        *stage = 3;
        svt_av1_enc_deinit(handle);
        svt_av1_enc_deinit_handle(handle);
        return (int32_t)e;
    }
    *stage = 0;
    *out = handle;
    return EB_ErrorNone;
}

/* Version of the header this shim was compiled against, as major*10000 + minor*100 + patch. */
uint32_t s6_svt_header_version(void) {
    return SVT_AV1_VERSION_MAJOR * 10000u + SVT_AV1_VERSION_MINOR * 100u +
        SVT_AV1_VERSION_PATCHLEVEL;
}

/*
 * Layout facts for the Rust unit test. Index:
 *  0 sizeof(EbBufferHeaderType)  1..9 offsets of size, p_buffer, n_filled_len,
 *  n_alloc_len, p_app_private, dts, pts, pic_type, flags
 *  10 sizeof(EbSvtIOFormat)      11..19 offsets of luma, cb, cr, y_stride,
 *  cr_stride, cb_stride, width, color_fmt, bit_depth
 *  20 sizeof(EbSvtAv1EncConfiguration); anything else: (size_t)-1.
 */
size_t s6_svt_layout(uint32_t which) {
    switch (which) {
    case 0: return sizeof(EbBufferHeaderType);
    case 1: return offsetof(EbBufferHeaderType, size);
    case 2: return offsetof(EbBufferHeaderType, p_buffer);
    case 3: return offsetof(EbBufferHeaderType, n_filled_len);
    case 4: return offsetof(EbBufferHeaderType, n_alloc_len);
    case 5: return offsetof(EbBufferHeaderType, p_app_private);
    case 6: return offsetof(EbBufferHeaderType, dts);
    case 7: return offsetof(EbBufferHeaderType, pts);
    case 8: return offsetof(EbBufferHeaderType, pic_type);
    case 9: return offsetof(EbBufferHeaderType, flags);
    case 10: return sizeof(EbSvtIOFormat);
    case 11: return offsetof(EbSvtIOFormat, luma);
    case 12: return offsetof(EbSvtIOFormat, cb);
    case 13: return offsetof(EbSvtIOFormat, cr);
    case 14: return offsetof(EbSvtIOFormat, y_stride);
    case 15: return offsetof(EbSvtIOFormat, cr_stride);
    case 16: return offsetof(EbSvtIOFormat, cb_stride);
    case 17: return offsetof(EbSvtIOFormat, width);
    case 18: return offsetof(EbSvtIOFormat, color_fmt);
    case 19: return offsetof(EbSvtIOFormat, bit_depth);
    case 20: return sizeof(EbSvtAv1EncConfiguration);
    default: return (size_t)-1;
    }
}
