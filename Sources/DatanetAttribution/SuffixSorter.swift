import CIntrinsics
import Glibc
import DatanetCrypto

/// SA-IS (Nong, Zhang and Chan, "Two Efficient Algorithms for Linear Time Suffix Array
/// Construction", 2011) on raw buffers, in the memory the result needs: the text, one Int32 per
/// byte for the array, a bit per symbol for the types, and buckets. The reduced problem and its
/// buckets live in the array's own unused space (as Yuta Mori's sais-lite does), so a shard's
/// build peaks near 5 bytes per text byte (schema/spans.md "Building").
///
/// The end of the text is a virtual sentinel smaller than every symbol: no byte is reserved.
public enum SuffixSorter {
    /// The largest text this sorter takes: positions and the empty mark fit an Int32.
    @usableFromInline static let maximumLength = Int(Int32.max) - 1

    /// Sorts the suffixes of `text` into `sa` (of the same count): sa[r] is the start of the
    /// suffix of rank r, ordered by unsigned byte, a proper prefix first.
    public static func sort(_ text: UnsafeBufferPointer<UInt8>, into sa: UnsafeMutableBufferPointer<Int32>) {
        precondition(sa.count == text.count && text.count <= maximumLength)
        guard let t = text.baseAddress, let out = sa.baseAddress else { return }
        sais(Bytes(p: t), n: text.count, k: 256, sa: out, spare: UnsafeMutableBufferPointer(start: nil, count: 0))
    }

    struct Bytes: Symbols {
        let p: UnsafePointer<UInt8>
        @inline(__always) subscript(i: Int) -> Int { Int(p[i]) }
        @inline(__always) func prefetch(_ i: Int) { datanet_prefetch(p + i) }
    }
    struct Names: Symbols {
        let p: UnsafePointer<Int32>
        @inline(__always) subscript(i: Int) -> Int { Int(p[i]) }
        @inline(__always) func prefetch(_ i: Int) { datanet_prefetch(p + i) }
    }

    /// How many entries ahead a scan asks for the text it will read: the reads are random, and
    /// a hint issued this early lets the next few dozen cache misses overlap.
    static let ahead = 64

    /// One bit per position: set for an S-type suffix (smaller than the suffix after it).
    struct Types {
        let words: UnsafeMutablePointer<UInt64>
        let count: Int
        init(_ n: Int) {
            count = max(1, (n + 63) / 64)
            words = .allocate(capacity: count)
            words.initialize(repeating: 0, count: count)
        }
        /// Calls `body` with each LMS position (S-type after L-type) in increasing order, a word
        /// of types at a time: position 0 never counts, and bits past the end are L-type.
        @inline(__always) func forEachLMS(words range: Range<Int>? = nil, _ body: (Int) -> Void) {
            let range = range ?? 0..<count
            // The word before a part ends in its last position's type (none before position 0).
            var carry: UInt64 = range.lowerBound > 0 ? words[range.lowerBound - 1] >> 63 : 1
            for w in range {
                let t = words[w]
                var lms = t & ~(t << 1 | carry)
                carry = t >> 63
                while lms != 0 {
                    body(w << 6 | lms.trailingZeroBitCount)
                    lms &= lms - 1
                }
            }
        }
    }

    /// Sorts the suffixes of `s` (n symbols below k) into sa[0..<n]. `spare` is unused space the
    /// buckets may take when it is large enough.
    static func sais<S: Symbols>(_ s: S, n: Int, k: Int, sa: UnsafeMutablePointer<Int32>, spare: UnsafeMutableBufferPointer<Int32>) {
        if n == 0 { return }
        if n == 1 { sa[0] = 0; return }
        let types = Types(n)
        defer { types.words.deallocate() }
        let ownsBuckets = spare.count < k
        let buckets = ownsBuckets ? UnsafeMutablePointer<Int32>.allocate(capacity: k) : spare.baseAddress!
        defer { if ownsBuckets { buckets.deallocate() } }
        // Counts kept when that costs little or fits in the spare space after the buckets;
        // otherwise recounted for each pass (as sais-lite always does).
        let countsInSpare = !ownsBuckets && spare.count >= 2 * k
        let ownsCounts = !countsInSpare && k <= 1 << 16
        let counts: UnsafeMutablePointer<Int32>? = countsInSpare ? spare.baseAddress! + k : ownsCounts ? .allocate(capacity: k) : nil
        defer { if ownsCounts { counts?.deallocate() } }
        classify(s, n: n, types: types, counts: counts, k: k)
        /// Fills `buckets` with each symbol's first slot (or one past its last, `ends`).
        func fill(ends: Bool) {
            if let counts { buckets.update(from: counts, count: k) } else {
                buckets.initialize(repeating: 0, count: k)
                for i in 0..<n { buckets[s[i]] += 1 }
            }
            var sum: Int32 = 0
            for c in 0..<k {
                sum += buckets[c]
                buckets[c] = ends ? sum : sum - buckets[c]
            }
        }
        /// From LMS suffixes placed at bucket ends (0 marks an empty slot): the L-type suffixes
        /// left to right (the one before the sentinel first), then the S-type right to left, by
        /// scans `L` and `R`: stage 1's (`Substrings`), which leave the LMS suffixes alone
        /// negative, sorted by their substrings, or the final ones (`Sort`).
        func induce<L: InductionScan, R: InductionScan>(_: L.Type, _: R.Type) {
            fill(ends: false)
            let c1 = s[n - 1]
            sa[Int(buckets[c1])] = L.entry(s, n - 1, c1)
            buckets[c1] += 1
            SuffixSorter.induce(s, n: n, sa: sa, buckets: buckets, L.self)
            fill(ends: true)
            SuffixSorter.induce(s, n: n, sa: sa, buckets: buckets, R.self)
        }

        // Stage 1: sort the LMS substrings.
        Parallel.forEachPart(of: n, grain: inductionBlock) { part in (sa + part.lowerBound).update(repeating: 0, count: part.count) }
        fill(ends: true)
        let placed = placeLMS(s, types: types, k: k, sa: sa, ends: buckets)
        // No LMS suffix: inducing from the sentinel alone sorts every suffix.
        guard placed > 0 else { induce(SortL.self, SortS.self); return }
        induce(SubstringsL.self, SubstringsS.self)
        // The LMS suffixes, by their substrings' order, are the negative entries left.
        let m = compact(sa, count: n, keep: { $0 < 0 }, map: { ~$0 })
        // Name each LMS substring by rank (equal substrings share a name), at sa[m + p/2]: LMS
        // positions are at least two apart, so the slots are distinct and fit in sa[m..<n].
        // Each slot first holds its substring's length (to the next LMS position, inclusive),
        // so substrings of different lengths differ without reading the text; equal lengths
        // and bytes mean equal types too. The last one runs into the sentinel: unique.
        (sa + m).update(repeating: -1, count: n - m)
        var last = -1
        types.forEachLMS { p in
            if last >= 0 { sa[m + last / 2] = Int32(p - last + 1) }
            last = p
        }
        sa[m + last / 2] = Int32(n - last)
        let name = SuffixSorter.nameSubstrings(s, sa: sa, m: m, last: last) - 1
        // The reduced string (names in text order) moves to sa[n-m..<n].
        let names = compact(sa + m, count: n - m, keep: { $0 >= 0 }, map: { $0 })
        assert(names == m, "one name a LMS substring")
        memmove(sa + (n - m), sa + m, m * MemoryLayout<Int32>.stride)
        let reduced = sa + (n - m)
        if name + 1 < m {
            sais(Names(p: UnsafePointer(reduced)), n: m, k: name + 1, sa: sa,
                 spare: UnsafeMutableBufferPointer(start: sa + m, count: n - 2 * m))
        } else {
            for r in 0..<m { sa[Int(reduced[r])] = Int32(r) }
        }
        // The reduced suffixes' order back to text positions: the LMS positions, in text order,
        // overwrite the reduced string.
        var j = 0
        types.forEachLMS { p in reduced[j] = Int32(p); j += 1 }
        Parallel.forEachPart(of: m, grain: inductionBlock) { part in
            for r in part {
                datanet_prefetch(reduced + Int(sa[min(r + ahead, part.upperBound - 1)]))
                sa[r] = reduced[Int(sa[r])]
            }
        }
        // Stage 2: the sorted LMS suffixes at their bucket ends, then induce the rest.
        (sa + m).update(repeating: 0, count: n - m)
        fill(ends: true)
        if k <= 1 << 12 {
            placeRuns(s, sa: sa, m: m, k: k, ends: buckets)
        } else {
            var r = m - 1
            while r >= 0 {
                s.prefetch(Int(sa[max(r - ahead, 0)]))
                let p = Int(sa[r])
                sa[r] = 0
                let c = s[p]
                buckets[c] -= 1
                sa[Int(buckets[c])] = Int32(p)
                r -= 1
            }
        }
        induce(SortL.self, SortS.self)
    }
}

extension SuffixSorter {
    /// Whether `sa` is the suffix array of `text`, in linear time (Burkhardt and Kärkkäinen's
    /// check): a permutation of the positions, adjacent suffixes ordered by first byte, and on
    /// a tie by the ranks of the suffixes one byte on (the end of the text ranking lowest).
    @inlinable // specialized where it is called: the benchmark checks 100 M entries
    public static func isSuffixArray<A: RandomAccessCollection>(_ sa: A, of text: [UInt8]) -> Bool where A.Element: BinaryInteger, A.Index == Int {
        let n = text.count
        guard sa.count == n, n <= maximumLength else { return false }
        var rank = [Int32](repeating: -1, count: n + 1)
        for (r, entry) in zip(0..., sa) {
            guard entry >= 0, entry < n, rank[Int(entry)] < 0 else { return false }
            rank[Int(entry)] = Int32(r)
        }
        let first = sa.startIndex
        for i in 0..<max(0, n - 1) {
            let a = Int(sa[first + i]), b = Int(sa[first + i + 1])
            guard text[a] < text[b] || (text[a] == text[b] && rank[a + 1] < rank[b + 1]) else { return false }
        }
        return true
    }

    /// Moves the m sorted LMS suffixes in sa[0..<m] to the ends of their buckets (`ends`, one
    /// past each symbol's last slot), zeroing every other slot of sa[0..<m]. Sorted, they form
    /// one run per first symbol: a binary search finds each run's start (a few dozen text reads
    /// a symbol, for a small alphabet), and the run moves whole, highest symbol first, instead
    /// of one random text read per suffix.
    static func placeRuns<S: Symbols>(_ s: S, sa: UnsafeMutablePointer<Int32>, m: Int, k: Int, ends: UnsafePointer<Int32>) {
        var end = m, c = k - 1
        while c >= 0 && end > 0 {
            var low = 0, high = end
            while low < high {
                let middle = (low + high) / 2
                if s[Int(sa[middle])] < c { low = middle + 1 } else { high = middle }
            }
            let count = end - low, destination = Int(ends[c]) - count
            // Runs of higher symbols already sit at or past `end`, and a run never moves left:
            // at least as many suffixes as LMS suffixes start below each symbol.
            if count > 0 && destination != low {
                memmove(sa + destination, sa + low, count * MemoryLayout<Int32>.stride)
                (sa + low).update(repeating: 0, count: min(end, destination) - low)
            }
            end = low
            c -= 1
        }
    }
}

/// A string of non-negative symbols SA-IS sorts: the text's bytes, or names at a deeper level.
protocol Symbols {
    subscript(i: Int) -> Int { get }
    /// Asks the cache for symbol i ahead of its read; never faults, whatever i.
    func prefetch(_ i: Int)
}
