import DatanetObjects
/// The media type `contribute` records when the contributor gives none (schema/records.md
/// "Media types"): from the file name's extension, else `text/plain` for a file that is valid
/// UTF-8, else `application/octet-stream`; a folder is `inode/directory`. A claim only: what
/// datanet does with content (near-duplicate checks) is decided by the bytes, not this.
public enum MediaType {
    /// Lower-cased extension → media type (IANA registrations and common usage).
    public static let byExtension: [String: String] = [
        "txt": "text/plain", "text": "text/plain", "md": "text/markdown", "markdown": "text/markdown",
        "rst": "text/x-rst", "csv": "text/csv", "tsv": "text/tab-separated-values", "html": "text/html", "htm": "text/html",
        "css": "text/css", "json": "application/json", "jsonl": "application/x-ndjson", "ndjson": "application/x-ndjson",
        "xml": "application/xml", "yaml": "application/yaml", "yml": "application/yaml", "toml": "application/toml",
        "py": "text/x-python", "swift": "text/x-swift", "c": "text/x-c", "h": "text/x-c", "cpp": "text/x-c++",
        "rs": "text/x-rust", "go": "text/x-go", "java": "text/x-java", "js": "text/javascript", "ts": "text/x-typescript",
        "sh": "text/x-shellscript", "tex": "text/x-tex", "srt": "application/x-subrip", "vtt": "text/vtt",
        "pdf": "application/pdf", "png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg", "gif": "image/gif",
        "webp": "image/webp", "svg": "image/svg+xml", "tif": "image/tiff", "tiff": "image/tiff",
        "wav": "audio/wav", "flac": "audio/flac", "mp3": "audio/mpeg", "ogg": "audio/ogg", "opus": "audio/opus",
        "mp4": "video/mp4", "webm": "video/webm", "mkv": "video/x-matroska",
        "zip": "application/zip", "gz": "application/gzip", "tar": "application/x-tar", "zst": "application/zstd",
        "parquet": "application/vnd.apache.parquet", "arrow": "application/vnd.apache.arrow.file",
        "npy": "application/octet-stream", "safetensors": "application/octet-stream",
    ]

    /// The guess for a file named `fileName` whose first bytes (or all, when small) are `sample`.
    public static func guess(fileName: String, isFolder: Bool, sample: [UInt8]?) -> String {
        if isFolder { return "inode/directory" }
        if let dot = fileName.lastIndex(of: "."), dot != fileName.startIndex,
           let type = byExtension[fileName[fileName.index(after: dot)...].lowercased()] {
            return type
        }
        if let sample, String(validating: sample, as: UTF8.self) != nil { return "text/plain" }
        return "application/octet-stream"
    }
}
