//! Checks the hand-written libva declarations against the real headers:
//! a C program compiled against `libva-dev` (`va/va.h`, `va/va_enc_h264.h`)
//! prints sizes, offsets and the bit-field packings this plugin computes by
//! hand; every number must match the Rust side. Needs a C compiler and
//! `libva-dev` (headers only; nothing is linked).

use s6_codec_vaapi::ffi::*;
use s6_codec_vaapi::headers::Profile;
use s6_codec_vaapi::params::{self, Settings};
use std::collections::HashMap;
use std::mem::{offset_of, size_of};
use std::process::Command;

const C_SOURCE: &str = r#"
#include <stdio.h>
#include <stddef.h>
#include <va/va.h>
#include <va/va_enc_h264.h>
#define S(T) printf("size %s %zu\n", #T, sizeof(T))
#define O(T, F) printf("off %s.%s %zu\n", #T, #F, offsetof(T, F))
#define C(N) printf("const %s %lld\n", #N, (long long)(N))
int main(void) {
    S(VAConfigAttrib); S(VAImageFormat); S(VAImage); S(VACodedBufferSegment);
    S(VAPictureH264); S(VAEncSequenceParameterBufferH264);
    S(VAEncPictureParameterBufferH264); S(VAEncSliceParameterBufferH264);
    S(VAEncPackedHeaderParameterBuffer); S(VAEncMiscParameterRateControl);
    S(VAEncMiscParameterFrameRate); S(VAEncMiscParameterHRD);
    O(VAImage, format); O(VAImage, buf); O(VAImage, width); O(VAImage, data_size);
    O(VAImage, pitches); O(VAImage, offsets); O(VAImage, component_order);
    O(VACodedBufferSegment, buf); O(VACodedBufferSegment, next);
    O(VAEncSequenceParameterBufferH264, intra_period);
    O(VAEncSequenceParameterBufferH264, picture_width_in_mbs);
    O(VAEncSequenceParameterBufferH264, seq_fields);
    O(VAEncSequenceParameterBufferH264, bit_depth_luma_minus8);
    O(VAEncSequenceParameterBufferH264, offset_for_non_ref_pic);
    O(VAEncSequenceParameterBufferH264, offset_for_ref_frame);
    O(VAEncSequenceParameterBufferH264, frame_cropping_flag);
    O(VAEncSequenceParameterBufferH264, frame_crop_left_offset);
    O(VAEncSequenceParameterBufferH264, frame_crop_bottom_offset);
    O(VAEncSequenceParameterBufferH264, vui_parameters_present_flag);
    O(VAEncSequenceParameterBufferH264, vui_fields);
    O(VAEncSequenceParameterBufferH264, aspect_ratio_idc);
    O(VAEncSequenceParameterBufferH264, sar_width);
    O(VAEncSequenceParameterBufferH264, num_units_in_tick);
    O(VAEncSequenceParameterBufferH264, time_scale);
    O(VAEncPictureParameterBufferH264, ReferenceFrames);
    O(VAEncPictureParameterBufferH264, coded_buf);
    O(VAEncPictureParameterBufferH264, last_picture);
    O(VAEncPictureParameterBufferH264, frame_num);
    O(VAEncPictureParameterBufferH264, pic_init_qp);
    O(VAEncPictureParameterBufferH264, second_chroma_qp_index_offset);
    O(VAEncPictureParameterBufferH264, pic_fields);
    O(VAEncSliceParameterBufferH264, macroblock_info);
    O(VAEncSliceParameterBufferH264, slice_type);
    O(VAEncSliceParameterBufferH264, idr_pic_id);
    O(VAEncSliceParameterBufferH264, pic_order_cnt_lsb);
    O(VAEncSliceParameterBufferH264, delta_pic_order_cnt_bottom);
    O(VAEncSliceParameterBufferH264, direct_spatial_mv_pred_flag);
    O(VAEncSliceParameterBufferH264, RefPicList0);
    O(VAEncSliceParameterBufferH264, RefPicList1);
    O(VAEncSliceParameterBufferH264, luma_log2_weight_denom);
    O(VAEncSliceParameterBufferH264, luma_weight_l0);
    O(VAEncSliceParameterBufferH264, chroma_weight_l0_flag);
    O(VAEncSliceParameterBufferH264, chroma_weight_l0);
    O(VAEncSliceParameterBufferH264, luma_weight_l1_flag);
    O(VAEncSliceParameterBufferH264, chroma_offset_l1);
    O(VAEncSliceParameterBufferH264, cabac_init_idc);
    O(VAEncSliceParameterBufferH264, slice_beta_offset_div2);
    O(VAEncSliceParameterBufferH264, va_reserved);
    O(VAEncPackedHeaderParameterBuffer, has_emulation_bytes);
    O(VAEncPackedHeaderParameterBuffer, va_reserved);
    O(VAEncMiscParameterRateControl, rc_flags);
    O(VAEncMiscParameterRateControl, ICQ_quality_factor);
    O(VAEncMiscParameterRateControl, target_frame_size);
    O(VAEncMiscParameterBuffer, data);
    C(VAProfileH264Main); C(VAProfileH264High); C(VAProfileH264ConstrainedBaseline);
    C(VAEntrypointEncSlice); C(VAEntrypointEncSliceLP);
    C(VAConfigAttribRTFormat); C(VAConfigAttribRateControl); C(VAConfigAttribEncPackedHeaders);
    C(VA_RT_FORMAT_YUV420); C(VA_RC_CBR); C(VA_RC_VBR); C(VA_RC_CQP);
    C(VA_ENC_PACKED_HEADER_SEQUENCE); C(VA_ENC_PACKED_HEADER_PICTURE);
    C(VA_FOURCC_NV12); C(VA_LSB_FIRST);
    C(VAEncCodedBufferType); C(VAEncSequenceParameterBufferType);
    C(VAEncPictureParameterBufferType); C(VAEncSliceParameterBufferType);
    C(VAEncPackedHeaderParameterBufferType); C(VAEncPackedHeaderDataBufferType);
    C(VAEncMiscParameterBufferType);
    C(VAEncMiscParameterTypeFrameRate); C(VAEncMiscParameterTypeRateControl);
    C(VAEncMiscParameterTypeHRD);
    C(VAEncPackedHeaderSequence); C(VAEncPackedHeaderPicture);
    C(VA_PICTURE_H264_INVALID); C(VA_PICTURE_H264_SHORT_TERM_REFERENCE);
    C(VA_INVALID_ID); C(VA_ATTRIB_NOT_SUPPORTED); C(VA_PROGRESSIVE);
    /* Bit-field packings for the configuration used in the test below. */
    VAEncSequenceParameterBufferH264 seq = {0};
    seq.seq_fields.bits.chroma_format_idc = 1;
    seq.seq_fields.bits.frame_mbs_only_flag = 1;
    seq.seq_fields.bits.direct_8x8_inference_flag = 1;
    seq.seq_fields.bits.log2_max_frame_num_minus4 = 4;
    seq.seq_fields.bits.pic_order_cnt_type = 2;
    printf("bits seq_fields %u\n", seq.seq_fields.value);
    seq.vui_fields.bits.timing_info_present_flag = 1;
    seq.vui_fields.bits.log2_max_mv_length_horizontal = 15;
    seq.vui_fields.bits.log2_max_mv_length_vertical = 15;
    seq.vui_fields.bits.fixed_frame_rate_flag = 1;
    printf("bits vui_fields %u\n", seq.vui_fields.value);
    VAEncPictureParameterBufferH264 pic = {0};
    pic.pic_fields.bits.idr_pic_flag = 1;
    pic.pic_fields.bits.reference_pic_flag = 1;
    pic.pic_fields.bits.entropy_coding_mode_flag = 1;
    pic.pic_fields.bits.transform_8x8_mode_flag = 1;
    pic.pic_fields.bits.deblocking_filter_control_present_flag = 1;
    printf("bits pic_fields_high_idr %u\n", pic.pic_fields.value);
    pic.pic_fields.value = 0;
    pic.pic_fields.bits.reference_pic_flag = 1;
    pic.pic_fields.bits.deblocking_filter_control_present_flag = 1;
    printf("bits pic_fields_cb_p %u\n", pic.pic_fields.value);
    return 0;
}
"#;

fn c_facts() -> HashMap<String, i128> {
    let dir = std::env::temp_dir().join(format!("s6-vaapi-layout-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let src = dir.join("layout.c");
    let exe = dir.join("layout");
    std::fs::write(&src, C_SOURCE).expect("write C source");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let out = Command::new(&cc)
        .arg(&src)
        .arg("-o")
        .arg(&exe)
        .output()
        .expect("run the C compiler");
    assert!(
        out.status.success(),
        "compiling against libva-dev headers failed (apt-get install libva-dev):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run = Command::new(&exe).output().expect("run layout program");
    assert!(run.status.success());
    std::fs::remove_dir_all(&dir).ok();
    String::from_utf8(run.stdout)
        .expect("utf8")
        .lines()
        .map(|l| {
            let mut it = l.split_whitespace();
            let kind = it.next().expect("kind");
            let name = it.next().expect("name");
            let value: i128 = it.next().expect("value").parse().expect("number");
            (format!("{kind} {name}"), value)
        })
        .collect()
}

#[test]
fn declarations_match_libva_headers() {
    let c = c_facts();
    let mut checked = 0;
    let mut check = |key: &str, rust: i128| {
        let want = *c
            .get(key)
            .unwrap_or_else(|| panic!("C side did not print {key}"));
        assert_eq!(rust, want, "{key}: Rust {rust}, C {want}");
        checked += 1;
    };
    macro_rules! size {
        ($t:ident) => {
            check(concat!("size ", stringify!($t)), size_of::<$t>() as i128)
        };
    }
    macro_rules! off {
        ($t:ident, $f:ident) => {
            check(
                concat!("off ", stringify!($t), ".", stringify!($f)),
                offset_of!($t, $f) as i128,
            )
        };
        ($t:ident, $f:ident => $rf:ident) => {
            check(
                concat!("off ", stringify!($t), ".", stringify!($f)),
                offset_of!($t, $rf) as i128,
            )
        };
    }
    size!(VAConfigAttrib);
    size!(VAImageFormat);
    size!(VAImage);
    size!(VACodedBufferSegment);
    size!(VAPictureH264);
    size!(VAEncSequenceParameterBufferH264);
    size!(VAEncPictureParameterBufferH264);
    size!(VAEncSliceParameterBufferH264);
    size!(VAEncPackedHeaderParameterBuffer);
    size!(VAEncMiscParameterRateControl);
    size!(VAEncMiscParameterFrameRate);
    size!(VAEncMiscParameterHRD);
    off!(VAImage, format);
    off!(VAImage, buf);
    off!(VAImage, width);
    off!(VAImage, data_size);
    off!(VAImage, pitches);
    off!(VAImage, offsets);
    off!(VAImage, component_order);
    off!(VACodedBufferSegment, buf);
    off!(VACodedBufferSegment, next);
    off!(VAEncSequenceParameterBufferH264, intra_period);
    off!(VAEncSequenceParameterBufferH264, picture_width_in_mbs);
    off!(VAEncSequenceParameterBufferH264, seq_fields);
    off!(VAEncSequenceParameterBufferH264, bit_depth_luma_minus8);
    off!(VAEncSequenceParameterBufferH264, offset_for_non_ref_pic);
    off!(VAEncSequenceParameterBufferH264, offset_for_ref_frame);
    off!(VAEncSequenceParameterBufferH264, frame_cropping_flag);
    off!(VAEncSequenceParameterBufferH264, frame_crop_left_offset);
    off!(VAEncSequenceParameterBufferH264, frame_crop_bottom_offset);
    off!(
        VAEncSequenceParameterBufferH264,
        vui_parameters_present_flag
    );
    off!(VAEncSequenceParameterBufferH264, vui_fields);
    off!(VAEncSequenceParameterBufferH264, aspect_ratio_idc);
    off!(VAEncSequenceParameterBufferH264, sar_width);
    off!(VAEncSequenceParameterBufferH264, num_units_in_tick);
    off!(VAEncSequenceParameterBufferH264, time_scale);
    off!(VAEncPictureParameterBufferH264, ReferenceFrames);
    off!(VAEncPictureParameterBufferH264, coded_buf);
    off!(VAEncPictureParameterBufferH264, last_picture);
    off!(VAEncPictureParameterBufferH264, frame_num);
    off!(VAEncPictureParameterBufferH264, pic_init_qp);
    off!(
        VAEncPictureParameterBufferH264,
        second_chroma_qp_index_offset
    );
    off!(VAEncPictureParameterBufferH264, pic_fields);
    off!(VAEncSliceParameterBufferH264, macroblock_info);
    off!(VAEncSliceParameterBufferH264, slice_type);
    off!(VAEncSliceParameterBufferH264, idr_pic_id);
    off!(VAEncSliceParameterBufferH264, pic_order_cnt_lsb);
    off!(VAEncSliceParameterBufferH264, delta_pic_order_cnt_bottom);
    off!(VAEncSliceParameterBufferH264, direct_spatial_mv_pred_flag);
    off!(VAEncSliceParameterBufferH264, RefPicList0);
    off!(VAEncSliceParameterBufferH264, RefPicList1);
    off!(VAEncSliceParameterBufferH264, luma_log2_weight_denom);
    off!(VAEncSliceParameterBufferH264, luma_weight_l0);
    off!(VAEncSliceParameterBufferH264, chroma_weight_l0_flag);
    off!(VAEncSliceParameterBufferH264, chroma_weight_l0);
    off!(VAEncSliceParameterBufferH264, luma_weight_l1_flag);
    off!(VAEncSliceParameterBufferH264, chroma_offset_l1);
    off!(VAEncSliceParameterBufferH264, cabac_init_idc);
    off!(VAEncSliceParameterBufferH264, slice_beta_offset_div2);
    off!(VAEncSliceParameterBufferH264, va_reserved);
    off!(VAEncPackedHeaderParameterBuffer, has_emulation_bytes);
    off!(VAEncPackedHeaderParameterBuffer, va_reserved);
    off!(VAEncMiscParameterRateControl, rc_flags);
    off!(VAEncMiscParameterRateControl, ICQ_quality_factor);
    off!(VAEncMiscParameterRateControl, target_frame_size);
    // The misc buffer is the 4-byte type word followed by the payload.
    check("off VAEncMiscParameterBuffer.data", 4);

    let consts: Vec<(&str, i128)> = vec![
        ("VAProfileH264Main", VA_PROFILE_H264_MAIN.into()),
        ("VAProfileH264High", VA_PROFILE_H264_HIGH.into()),
        (
            "VAProfileH264ConstrainedBaseline",
            VA_PROFILE_H264_CONSTRAINED_BASELINE.into(),
        ),
        ("VAEntrypointEncSlice", VA_ENTRYPOINT_ENC_SLICE.into()),
        ("VAEntrypointEncSliceLP", VA_ENTRYPOINT_ENC_SLICE_LP.into()),
        ("VAConfigAttribRTFormat", VA_CONFIG_ATTRIB_RT_FORMAT.into()),
        (
            "VAConfigAttribRateControl",
            VA_CONFIG_ATTRIB_RATE_CONTROL.into(),
        ),
        (
            "VAConfigAttribEncPackedHeaders",
            VA_CONFIG_ATTRIB_ENC_PACKED_HEADERS.into(),
        ),
        ("VA_RT_FORMAT_YUV420", VA_RT_FORMAT_YUV420.into()),
        ("VA_RC_CBR", VA_RC_CBR.into()),
        ("VA_RC_VBR", VA_RC_VBR.into()),
        ("VA_RC_CQP", VA_RC_CQP.into()),
        (
            "VA_ENC_PACKED_HEADER_SEQUENCE",
            VA_ENC_PACKED_HEADER_SEQUENCE.into(),
        ),
        (
            "VA_ENC_PACKED_HEADER_PICTURE",
            VA_ENC_PACKED_HEADER_PICTURE.into(),
        ),
        ("VA_FOURCC_NV12", VA_FOURCC_NV12.into()),
        ("VA_LSB_FIRST", VA_LSB_FIRST.into()),
        ("VAEncCodedBufferType", VA_ENC_CODED_BUFFER_TYPE.into()),
        (
            "VAEncSequenceParameterBufferType",
            VA_ENC_SEQUENCE_PARAMETER_BUFFER_TYPE.into(),
        ),
        (
            "VAEncPictureParameterBufferType",
            VA_ENC_PICTURE_PARAMETER_BUFFER_TYPE.into(),
        ),
        (
            "VAEncSliceParameterBufferType",
            VA_ENC_SLICE_PARAMETER_BUFFER_TYPE.into(),
        ),
        (
            "VAEncPackedHeaderParameterBufferType",
            VA_ENC_PACKED_HEADER_PARAMETER_BUFFER_TYPE.into(),
        ),
        (
            "VAEncPackedHeaderDataBufferType",
            VA_ENC_PACKED_HEADER_DATA_BUFFER_TYPE.into(),
        ),
        (
            "VAEncMiscParameterBufferType",
            VA_ENC_MISC_PARAMETER_BUFFER_TYPE.into(),
        ),
        (
            "VAEncMiscParameterTypeFrameRate",
            VA_ENC_MISC_PARAMETER_TYPE_FRAME_RATE.into(),
        ),
        (
            "VAEncMiscParameterTypeRateControl",
            VA_ENC_MISC_PARAMETER_TYPE_RATE_CONTROL.into(),
        ),
        (
            "VAEncMiscParameterTypeHRD",
            VA_ENC_MISC_PARAMETER_TYPE_HRD.into(),
        ),
        (
            "VAEncPackedHeaderSequence",
            VA_ENC_PACKED_HEADER_TYPE_SEQUENCE.into(),
        ),
        (
            "VAEncPackedHeaderPicture",
            VA_ENC_PACKED_HEADER_TYPE_PICTURE.into(),
        ),
        ("VA_PICTURE_H264_INVALID", VA_PICTURE_H264_INVALID.into()),
        (
            "VA_PICTURE_H264_SHORT_TERM_REFERENCE",
            VA_PICTURE_H264_SHORT_TERM_REFERENCE.into(),
        ),
        ("VA_INVALID_ID", VA_INVALID_ID.into()),
        ("VA_ATTRIB_NOT_SUPPORTED", VA_ATTRIB_NOT_SUPPORTED.into()),
        ("VA_PROGRESSIVE", VA_PROGRESSIVE.into()),
    ];
    for (name, value) in &consts {
        check(&format!("const {name}"), *value);
    }

    let s = Settings {
        width: 1280,
        height: 720,
        fps_num: 30,
        fps_den: 1,
        gop: 30,
        crf: -1,
        ..Default::default()
    };
    let high = params::h264_params(&s, Profile::High);
    let cb = params::h264_params(&s, Profile::ConstrainedBaseline);
    check("bits seq_fields", params::seq_fields(&high).into());
    check("bits vui_fields", params::vui_fields(&high).into());
    check(
        "bits pic_fields_high_idr",
        params::pic_fields(&high, true).into(),
    );
    check(
        "bits pic_fields_cb_p",
        params::pic_fields(&cb, false).into(),
    );
    assert!(checked > 100, "only {checked} facts checked");
}
