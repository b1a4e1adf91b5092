"""The data layer: dataset formats, the catalog, files and downloads, the parse cache, load checks, splits and data plans."""
