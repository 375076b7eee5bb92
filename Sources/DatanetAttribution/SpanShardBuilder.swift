import DatanetCrypto

/// Builds one span shard (schema/spans.md "Shards"): documents are appended in training order
/// into one text buffer (reserve the total first, so the text is held once), then `write`
/// sorts the suffixes (SA-IS, one Int32 per byte) and emits the shard's bytes in order.
public struct SpanShardBuilder {
    public var binding: SpanShard.Binding
    public private(set) var contributions = [SpanShard.Contribution]()
    private(set) var text = [UInt8]()
    private var documents = [(start: Int, contribution: Int, line: Int, path: String)]()

    public init(_ binding: SpanShard.Binding, reserving bytes: Int = 0) {
        self.binding = binding
        text.reserveCapacity(bytes)
    }

    /// Bytes of text so far (documents and their separators).
    public var textCount: Int { text.count }

    /// Adds a contribution the build considered (in intake order); returns its index.
    public mutating func add(_ c: SpanShard.Contribution) -> Int {
        contributions.append(c)
        return contributions.count - 1
    }

    /// Appends one document of the contribution at `contribution` (which must be indexed).
    /// Refuses text holding 0xFF (not UTF-8) and a shard past its bound.
    public mutating func append(_ bytes: some Collection<UInt8>, contribution: Int, path: String, line: Int) throws(SpanError) {
        guard !bytes.contains(0xFF) else { throw .malformed("\(path): a document holds the byte 0xFF, which UTF-8 never does") }
        guard text.count + bytes.count + 1 <= SpanShard.maximumText else { throw .tooLarge("a shard holds at most \(SpanShard.maximumText) bytes of text") }
        guard line <= Int(UInt32.max), path.utf8.count <= Int(UInt32.max) else { throw .tooLarge("\(path): a line number or path past the shard's bounds") }
        documents.append((text.count, contribution, line, path))
        text.append(contentsOf: bytes)
        text.append(0xFF)
    }

    /// Sorts the suffixes and hands the shard's bytes to `sink` in order (a few MiB at a time).
    public func write(_ sink: (UnsafeRawBufferPointer) throws -> Void) throws {
        var out = [UInt8]()
        out.reserveCapacity(1 << 20)
        func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        func flush(_ force: Bool = false) throws {
            if force || out.count >= 1 << 20 { try out.withUnsafeBytes(sink); out.removeAll(keepingCapacity: true) }
        }
        func pad() { while out.count % 8 != 0 { out.append(0) } }
        let n = text.count, width = SpanShard.width(n)
        var strings = [UInt8](), pathAt = [Int]()
        for d in documents { pathAt.append(strings.count); strings += d.path.utf8 }
        out += SpanShard.magic
        out += binding.datanet.bytes
        out += binding.checkpointRoot.bytes
        for v in [binding.checkpointSize, binding.from, binding.to, UInt64(contributions.count), UInt64(documents.count),
                  UInt64(strings.count), UInt64(n), UInt64(width)] { u64(v) }
        for c in contributions { out += c.id.bytes; u64(c.intake); u64(c.state.rawValue); try flush() }
        for (d, at) in zip(documents, pathAt) {
            u64(UInt64(d.start)); u64(UInt64(at)); u32(UInt32(d.contribution)); u32(UInt32(d.line)); u32(UInt32(d.path.utf8.count)); u32(0)
            try flush()
        }
        out += strings
        pad()
        try flush(true)
        try text.withUnsafeBytes(sink)
        out.removeAll(keepingCapacity: true)
        for _ in 0..<((8 - n % 8) % 8) { out.append(0) } // the text padded to 8 bytes
        let sa = UnsafeMutableBufferPointer<Int32>.allocate(capacity: n)
        defer { sa.deallocate() }
        text.withUnsafeBufferPointer { SuffixSorter.sort($0, into: sa) }
        for r in 0..<n {
            let v = UInt32(bitPattern: sa[r]).littleEndian
            withUnsafeBytes(of: v) { out.append(contentsOf: $0.prefix(width)) }
            if out.count >= 1 << 20 { try flush(true) }
        }
        try flush(true)
    }

    /// The shard's bytes in memory (tests and small indexes).
    public func encoded() throws -> [UInt8] {
        var bytes = [UInt8]()
        try write { bytes.append(contentsOf: $0) }
        return bytes
    }
}
