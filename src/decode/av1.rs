//! AV1 decoding with libdav1d.

use super::DecodeOutcome;
use crate::mux::reader::read_sample;
use crate::mux::Mp4Scan;
use std::fs::File;
use std::path::Path;

/// Feeds every sample of `scan` to dav1d and counts the pictures.
pub fn decode(path: &Path, scan: &Mp4Scan) -> DecodeOutcome {
    let mut settings = dav1d::Settings::new();
    settings.set_n_threads(2);
    settings.set_max_frame_delay(1);
    let mut decoder = match dav1d::Decoder::with_settings(&settings) {
        Ok(d) => d,
        Err(err) => return DecodeOutcome::Unavailable(format!("dav1d failed to open: {err:?}")),
    };
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(err) => {
            return DecodeOutcome::Decoded {
                frames: 0,
                decoder: "dav1d",
                errors: vec![format!("opening {}: {err}", path.display())],
            }
        }
    };
    let mut frames = 0u64;
    let mut errors = Vec::new();
    for (i, sample) in scan.samples.iter().enumerate() {
        let mut data = match read_sample(&mut file, sample) {
            Ok(d) => d,
            Err(err) => {
                errors.push(format!("sample {i}: {err:#}"));
                break;
            }
        };
        if i == 0 {
            // The sequence header from av1C first, in case the sample lacks it.
            let mut with_config = scan.track.config_record.clone();
            with_config.append(&mut data);
            data = with_config;
        }
        let mut result = decoder.send_data(data, None, None, None);
        loop {
            match result {
                Ok(()) => break,
                Err(dav1d::Error::Again) => {
                    frames += drain(&mut decoder, &mut errors);
                    result = decoder.send_pending_data();
                }
                Err(err) => {
                    errors.push(format!("sample {i}: dav1d rejected it: {err:?}"));
                    break;
                }
            }
        }
        frames += drain(&mut decoder, &mut errors);
        if errors.len() > 20 {
            errors.push("too many errors; stopped decoding".into());
            break;
        }
    }
    frames += drain(&mut decoder, &mut errors);
    DecodeOutcome::Decoded {
        frames,
        decoder: "dav1d",
        errors,
    }
}

/// Takes every picture the decoder has ready.
fn drain(decoder: &mut dav1d::Decoder, errors: &mut Vec<String>) -> u64 {
    let mut n = 0;
    loop {
        match decoder.get_picture() {
            Ok(_) => n += 1,
            Err(dav1d::Error::Again) => return n,
            Err(err) => {
                errors.push(format!("dav1d decoding error: {err:?}"));
                return n;
            }
        }
    }
}
