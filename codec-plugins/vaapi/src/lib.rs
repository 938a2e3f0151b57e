//! s6-edge codec plugin: vaapi (under construction).
