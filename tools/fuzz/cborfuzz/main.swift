// CBOR decoder fuzzer (run by hand; CI runs 100,000 mutations in the tests): mutates the
// goldens and random seeds, decodes, and checks that whatever decodes re-encodes to exactly
// its input, that the pull reader (`CBOR.Scanner`) skips exactly the inputs the decoder
// accepts, and that validation without a tree (`CBOR.Scanner.validate`, what the leaf,
// envelope and record decoders run first) refuses with the decoder's error at its offset. Any crash is a finding; a mismatch exits 1 and prints the input.
//   cbor-fuzz [ITERATIONS] [SEED]        (defaults: 10,000,000 and 1)
import DatanetCBOR
import DatanetTestSupport
import Foundation

let args = CommandLine.arguments
let iterations = args.count > 1 ? Int(args[1]) ?? 10_000_000 : 10_000_000
var rng = SplitMix64(seed: args.count > 2 ? UInt64(args[2]) ?? 1 : 1)

let seeds: [[UInt8]] = [
    [0x00], [0x18, 0x18], [0x19, 0x01, 0x00], [0x3b] + [UInt8](repeating: 0xff, count: 8),
    [0x42, 1, 2], [0x62, 0xc3, 0xa9], [0x85, 0x01, 0x80, 0xf6, 0xf5, 0xf4],
    [0xa4, 0x0a, 0x04, 0x18, 0x64, 0x03, 0x20, 0x02, 0x61, 0x61, 0x01],
    CBOR.array([.bytes([UInt8](repeating: 7, count: 40)), .unsigned(1), .map([.init(.unsigned(2), .string("x"))])]).encoded,
]
var accepted = 0
let start = Date()
for i in 0..<iterations {
    var b = seeds[i % seeds.count]
    rng.mutate(&b)
    let decoded = Result { () throws(CBORError) in try CBOR.decode(b) }
    let item = try? decoded.get()
    let validated = b.withUnsafeBytes { buf in Result { () throws(CBORError) in try CBOR.Scanner.validate(buf) } }
    switch (decoded, validated) {
    case (.success, .success): break
    case (.failure(let d), .failure(let v)) where d == v: break
    default:
        print("validate and decode disagree on input \(b.map { String(format: "%02x", $0) }.joined())")
        exit(1)
    }
    if let item {
        accepted += 1
        if item.encoded != b {
            print("re-encoding mismatch for input \(b.map { String(format: "%02x", $0) }.joined())")
            exit(1)
        }
    }
    let skipped = b.withUnsafeBytes { buf -> Bool in
        var s = CBOR.Scanner(buf)
        return (try? s.skip()) != nil && s.isAtEnd
    }
    if skipped != (item != nil) {
        print("scanner and decoder disagree on input \(b.map { String(format: "%02x", $0) }.joined())")
        exit(1)
    }
    if i > 0 && i % 1_000_000 == 0 { print("\(i) inputs, \(accepted) accepted, \(Int(Date().timeIntervalSince(start))) s") }
}
print("cbor-fuzz: \(iterations) inputs, \(accepted) accepted and re-encoded exactly, scanner and validation agreed on all, no crash")
