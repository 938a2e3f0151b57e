//! s6-edge codec plugin: svtav1 (under construction).
