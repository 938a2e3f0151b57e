//! s6-edge codec plugin: v4l2m2m (under construction).
