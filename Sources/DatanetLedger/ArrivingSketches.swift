import DatanetCrypto
import DatanetRecords
import Dispatch
import Synchronization

/// Near-duplicate sketches of texts made on other threads as their bytes arrive (a bundle's
/// chunks, a fetch's answers), while the arriving thread goes on: each text is sketched once,
/// from the bytes in hand, instead of being read back and sketched when it is flagged. At most
/// a few batches wait; past them `add` waits. At most `kept` texts are sketched (about 2 KB a
/// sketch): texts past them are left to be read back when flagged. `taken` waits for every
/// batch.
public final class ArrivingSketches<Key: Hashable & Sendable>: Sendable {
    /// The most texts one instance sketches.
    public static var kept: Int { 1 << 16 }

    private let datanet: DatanetID
    private let group = DispatchGroup(), room = DispatchSemaphore(value: 4)
    private let made = Mutex([Key: TextSketch]())
    private let accepted = Mutex(0)

    public init(datanet: DatanetID) { self.datanet = datanet }

    /// Sketches each text (UTF-8 bytes of at most `MinHash.maximumText`; others are left out)
    /// under its keys, on another thread, while fewer than `kept` were taken.
    public func add(_ texts: [(keys: [Key], bytes: [UInt8])]) {
        let texts = accepted.withLock { n in
            let room = max(0, Self.kept - n)
            n += min(room, texts.count)
            return texts.prefix(room)
        }
        guard !texts.isEmpty else { return }
        room.wait()
        let d = datanet
        DispatchQueue.global().async(group: group) { [self] in
            defer { room.signal() }
            var sketches = [(Key, TextSketch)]()
            for t in texts where t.bytes.count <= MinHash.maximumText {
                guard let text = String(validating: t.bytes, as: UTF8.self), let sketch = TextSketch(text, datanet: d) else { continue }
                sketches += t.keys.map { ($0, sketch) }
            }
            made.withLock { all in for (k, s) in sketches { all[k] = s } }
        }
    }

    /// Every sketch made, once all batches are done.
    public func taken() -> [Key: TextSketch] {
        group.wait()
        return made.withLock { $0 }
    }
}
