// Prints freshly made records of every kind (new random keys and nonce on each run), one per
// line as "name hex", for tools/interop/cddl to validate with an independent CDDL validator.
import DatanetCrypto
import DatanetTestSupport

let keys = (0..<5).map { _ in try! SigningKey() }
var nonce = [UInt8](repeating: 0, count: 16)
for i in nonce.indices { nonce[i] = UInt8.random(in: 0...255) }
for (name, envelope) in RecordSamples.make(keys: keys, nonce: nonce) {
    print(name, Hex.encode(envelope.encoded))
}
