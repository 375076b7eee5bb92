/// A failure reported by libcrypto or libsodium, or a malformed key or signature.
public enum CryptoError: Error, Equatable, CustomStringConvertible {
    /// libcrypto refused an operation; `call` names the function.
    case libcrypto(call: String)
    /// libsodium refused an operation; `call` names the function.
    case libsodium(call: String)
    /// A key or signature had the wrong length.
    case badLength(what: String, got: Int, want: Int)

    public var description: String {
        switch self {
        case .libcrypto(let call): return "libcrypto call \(call) failed"
        case .libsodium(let call): return "libsodium call \(call) failed"
        case .badLength(let what, let got, let want): return "\(what) is \(got) bytes, expected \(want)"
        }
    }
}
