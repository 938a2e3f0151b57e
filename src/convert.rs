//! Pixel conversion from captured layouts to what an encoder plugin wants
//! (I420 for SVT-AV1). Runs on the encoder thread, never the capture thread.
