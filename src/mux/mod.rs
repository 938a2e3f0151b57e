//! Crash-safe fragmented MP4 writing (AV1 `av01`/`av1C`, H.264 `avc1`/`avcC`).
