//! s6-edge codec plugin: nvenc (under construction).
