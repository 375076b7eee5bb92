import CIntrinsics
import DatanetCrypto

/// One scan of SA-IS's induction, as sais-lite writes it: each entry carries by its sign whether
/// the suffix before it is to be induced in this scan, so no type is looked up.
protocol InductionScan {
    /// Left to right (L-type suffixes, from bucket starts) or right to left (S-type, from ends).
    static var forward: Bool { get }
    /// The entry written for suffix j, whose first symbol is c0: negative when the suffix before
    /// j is not for this scan.
    static func entry<S: Symbols>(_ s: S, _ j: Int, _ c0: Int) -> Int32
    /// What the scan leaves in a slot it has passed, given what the slot held.
    static func leave(_ p: Int32) -> Int32
}

extension SuffixSorter {
    /// The final induction's L scan: every entry flips sign (the S scan flips them back).
    enum SortL: InductionScan {
        static var forward: Bool { true }
        @inline(__always) static func entry<S: Symbols>(_ s: S, _ j: Int, _ c0: Int) -> Int32 { j > 0 && s[j - 1] < c0 ? ~Int32(j) : Int32(j) }
        @inline(__always) static func leave(_ p: Int32) -> Int32 { ~p }
    }
    /// The final induction's S scan.
    enum SortS: InductionScan {
        static var forward: Bool { false }
        @inline(__always) static func entry<S: Symbols>(_ s: S, _ j: Int, _ c0: Int) -> Int32 { j == 0 || s[j - 1] > c0 ? ~Int32(j) : Int32(j) }
        @inline(__always) static func leave(_ p: Int32) -> Int32 { p > 0 ? p : ~p }
    }
    /// Stage 1's L scan (sais-lite's LMSsort): entries as the final L scan's; an entry that has
    /// induced is cleared.
    enum SubstringsL: InductionScan {
        static var forward: Bool { true }
        @inline(__always) static func entry<S: Symbols>(_ s: S, _ j: Int, _ c0: Int) -> Int32 { SortL.entry(s, j, c0) }
        @inline(__always) static func leave(_ p: Int32) -> Int32 { p >= 0 ? 0 : ~p }
    }
    /// Stage 1's S scan: what it places for an LMS suffix stays negative, so the LMS suffixes
    /// alone remain, sorted by their substrings.
    enum SubstringsS: InductionScan {
        static var forward: Bool { false }
        @inline(__always) static func entry<S: Symbols>(_ s: S, _ j: Int, _ c0: Int) -> Int32 { j > 0 && s[j - 1] > c0 ? ~Int32(j) : Int32(j) }
        @inline(__always) static func leave(_ p: Int32) -> Int32 { p > 0 ? 0 : p }
    }

    /// Entries a block holds: its gathered symbols and entries (8 bytes each) stay in L2.
    static let inductionBlock = 1 << 16

    /// The symbol and entry an induction from slot value p writes, packed (symbol in the high
    /// half); -1 when p induces nothing.
    @inline(__always) static func gathered<S: Symbols, K: InductionScan>(_ s: S, _ p: Int32, _: K.Type) -> Int64 {
        guard p > 0 else { return -1 }
        let j = Int(p) - 1, c0 = s[j]
        return Int64(c0) << 32 | Int64(UInt32(bitPattern: K.entry(s, j, c0)))
    }

    /// One induction scan over sa[0..<n] with `buckets` at their starts (forward) or ends. The
    /// scan goes block by block (libsais's plan): the random reads of the text each entry
    /// needs are gathered for the whole block on both cores, then one thread places the entries
    /// in order. An entry placed inside the block being placed is gathered then, since the
    /// gather ran before it existed; the scan's order never places one behind itself.
    static func induce<S: Symbols, K: InductionScan>(_ s: S, n: Int, sa: UnsafeMutablePointer<Int32>,
                                                     buckets: UnsafeMutablePointer<Int32>, _ kind: K.Type) {
        let cache = UnsafeMutablePointer<Int64>.allocate(capacity: min(n, inductionBlock))
        defer { cache.deallocate() }
        let blocks = (n + inductionBlock - 1) / inductionBlock
        for step in 0..<blocks {
            let start = (K.forward ? step : blocks - 1 - step) * inductionBlock, end = min(n, start + inductionBlock)
            // Gather: disjoint slices of the block and of the cache; the text only read.
            Parallel.forEachChunk(of: end - start, chunk: inductionBlock / 8) { part in
                let last = start + part.upperBound - 1
                for r in (start + part.lowerBound)...last {
                    let q = Int(sa[min(r + ahead, last)])
                    s.prefetch(q > 0 ? q - 1 : 0)
                    cache[r - start] = gathered(s, sa[r], K.self)
                }
            }
            if K.forward {
                for r in start..<end {
                    let g = cache[r - start]
                    sa[r] = K.leave(sa[r])
                    if g >= 0 {
                        let c = Int(g >> 32), t = Int(buckets[c]), v = Int32(truncatingIfNeeded: g)
                        buckets[c] = Int32(t + 1)
                        sa[t] = v
                        if t < end { cache[t - start] = gathered(s, v, K.self) }
                    }
                }
            } else {
                var r = end - 1
                while r >= start {
                    let g = cache[r - start]
                    sa[r] = K.leave(sa[r])
                    if g >= 0 {
                        let c = Int(g >> 32), t = Int(buckets[c]) - 1, v = Int32(truncatingIfNeeded: g)
                        buckets[c] = Int32(t)
                        sa[t] = v
                        if t >= start { cache[t - start] = gathered(s, v, K.self) }
                    }
                    r -= 1
                }
            }
        }
    }

    /// Names the m LMS substrings listed by rank in sa[0..<m] (equal ones share a name), each
    /// name written over the substring's length at sa[m + p/2]; returns how many names. `last`
    /// is the LMS position whose substring runs into the sentinel (unique). Two passes, each on
    /// both cores: which entries start a new name (random reads of lengths and text), then the
    /// names, each part counting on from the starts before it.
    static func nameSubstrings<S: Symbols>(_ s: S, sa: UnsafeMutablePointer<Int32>, m: Int, last: Int) -> Int {
        let words = (m + 63) / 64
        let starts = UnsafeMutablePointer<UInt64>.allocate(capacity: max(1, words))
        defer { starts.deallocate() }
        starts.initialize(repeating: 0, count: max(1, words))
        let grain = inductionBlock / 64
        // Parts are whole words of `starts`, so no two threads write one word.
        Parallel.forEachPart(of: words, grain: grain) { part in
            let lo = part.lowerBound * 64, hi = min(m, part.upperBound * 64)
            var previous = lo > 0 ? Int(sa[lo - 1]) : -1
            var previousLength = previous >= 0 ? Int(sa[m + previous / 2]) : 0
            for r in lo..<hi {
                let q = Int(sa[min(r + ahead, m - 1)])
                datanet_prefetch(sa + m + q / 2)
                s.prefetch(q)
                let p = Int(sa[r]), length = Int(sa[m + p / 2])
                var same = previous >= 0 && length == previousLength && p != last && previous != last
                if same {
                    var d = 0
                    while d < length, s[p + d] == s[previous + d] { d += 1 }
                    same = d == length
                }
                if !same { starts[r >> 6] |= 1 << UInt64(r & 63) }
                (previous, previousLength) = (p, length)
            }
        }
        Parallel.forEachPart(of: words, grain: grain) { part in
            var name = -1
            for w in 0..<part.lowerBound { name += starts[w].nonzeroBitCount }
            for r in (part.lowerBound * 64)..<min(m, part.upperBound * 64) {
                datanet_prefetch_write(sa + m + Int(sa[min(r + ahead, m - 1)]) / 2)
                if starts[r >> 6] & (1 << UInt64(r & 63)) != 0 { name += 1 }
                sa[m + Int(sa[r]) / 2] = Int32(name)
            }
        }
        var names = 0
        for w in 0..<words { names += starts[w].nonzeroBitCount }
        return names
    }
}
