//! Entry points for the fuzz targets in `fuzz/` (each target is a three-line shim over one of
//! these), also run by the tests over the committed corpora.
