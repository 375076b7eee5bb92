import DatanetLedger
import DatanetRecords

/// Whether `error` is `RecordError.malformed` and its text holds `words`: a refusal asserted by
/// its case and its reason, not merely "some error".
public func isMalformed(_ error: any Error, _ words: String) -> Bool {
    if case .malformed(let why)? = error as? RecordError { why.contains(words) } else { false }
}

/// Whether `error` is `BundleError.malformed` (or `.refused`, with `refused: true`) whose text holds `words`.
public func isBundleError(_ error: any Error, refused: Bool = false, _ words: String) -> Bool {
    switch error as? BundleError {
    case .malformed(let why)?: !refused && why.contains(words)
    case .refused(let why)?: refused && why.contains(words)
    default: false
    }
}
