import Foundation
import Tokenizers

/// What a reader does with a line that is not a valid record.
public enum BadRecordPolicy: String, Sendable, Codable {
    /// Throw the line's `DatasetError`.
    case fail
    /// Skip the line and count it in `ReadStats`.
    case skip
}

/// What a reader saw: records returned and lines skipped.
public struct ReadStats: Sendable, Equatable {
    /// Records returned.
    public var records = 0
    /// Malformed lines skipped (always 0 with `BadRecordPolicy.fail`).
    public var skipped = 0
    /// The errors of the first `reasonLimit` skipped lines, for the stage's log.
    public var skipReasons: [DatasetError] = []
    /// How many skip reasons are kept.
    public static let reasonLimit = 5

    /// Creates empty statistics.
    public init() {}

    mutating func recordSkip(_ reason: DatasetError) {
        skipped += 1
        if skipReasons.count < Self.reasonLimit { skipReasons.append(reason) }
    }
}

/// Streams the records of a JSONL file: one JSON object a line, blank lines ignored.
///
/// The file is read in 1 MiB chunks, so memory holds one chunk and one line at a time whatever
/// the file's size. Fields other than those of the format are ignored. Without a `format` the
/// first valid record decides it: `chosen` or `rejected` make it preference, else `completion`
/// prompt-completion, else `text` language modeling, else `messages` prompt-only when the last
/// message is a user turn and conversational otherwise, else `prompt` alone prompt-only. Every
/// later record must then have that format's fields.
///
/// ```swift
/// let reader = try JSONLReader(url: url, onBadRecord: .skip)
/// while let record = try reader.next() { ... }
/// print(reader.stats.skipped)
/// ```
public final class JSONLReader {
    /// The path used in error messages.
    public let file: String
    /// What happens to malformed lines.
    public let onBadRecord: BadRecordPolicy
    /// The records' format: given, or detected from the first valid record (nil until then).
    public private(set) var format: DatasetFormat?
    /// Records returned and lines skipped so far.
    public private(set) var stats = ReadStats()
    private var lines: LineReader

    /// Opens `url`; `format` nil means detect it from the first record.
    public init(url: URL, format: DatasetFormat? = nil, onBadRecord: BadRecordPolicy = .fail) throws(DatasetError) {
        file = url.path
        self.format = format
        self.onBadRecord = onBadRecord
        lines = try LineReader(url: url)
    }

    /// The 1-based line number of the record `next()` returned last.
    public var lineNumber: Int { lines.lineNumber }

    /// The next record, or nil at the end of the file.
    ///
    /// - Throws: the first malformed line's error with `.fail`; file errors always.
    public func next() throws(DatasetError) -> DatasetRecord? {
        while let bytes = try lines.next() {
            if isBlank(bytes) { continue }
            do throws(DatasetError) {
                let record = try parse(bytes, line: lines.lineNumber)
                stats.records += 1
                return record
            } catch {
                guard onBadRecord == .skip else { throw error }
                stats.recordSkip(error)
            }
        }
        return nil
    }

    private func parse(_ bytes: ArraySlice<UInt8>, line: Int) throws(DatasetError) -> DatasetRecord {
        let parser = RecordParser(file: file, line: line, object: try parseJSONLine(bytes, file: file, line: line))
        let format: DatasetFormat
        if let known = self.format { format = known } else { format = try parser.detectFormat() }
        let record = try parser.record(as: format)
        self.format = format
        return record
    }
}

/// All the records of a file, with their format and what the reader skipped.
public struct RecordSet: Sendable {
    /// The path the records came from.
    public var file: String
    /// The records' format.
    public var format: DatasetFormat
    /// The records in file order.
    public var records: [DatasetRecord]
    /// Records read and lines skipped.
    public var stats: ReadStats

    /// Creates a record set from records in memory (`file` names them in messages).
    public init(file: String, format: DatasetFormat, records: [DatasetRecord], stats: ReadStats = ReadStats()) {
        self.file = file
        self.format = format
        self.records = records
        self.stats = stats
    }

    /// Reads a whole dataset file.
    ///
    /// A `.txt` file is language-modeling text, one document per paragraph: blank lines (empty or
    /// whitespace only) separate documents, and a paragraph's own line breaks are kept. Documents
    /// are separated by EOS when tokenized, so a file of one paragraph is one document. Any
    /// other file is read as JSONL.
    ///
    /// - Throws: `DatasetError.noRecords` when the file holds no valid record; the first malformed
    ///   line's error with `onBadRecord: .fail`.
    public static func read(_ url: URL, format: DatasetFormat? = nil,
                            onBadRecord: BadRecordPolicy = .fail) throws(DatasetError) -> RecordSet {
        if url.pathExtension.lowercased() == "txt" {
            if let format, format != .languageModeling {
                throw DatasetError.invalidConfiguration(
                    "\(url.path): a .txt file holds language-modeling text, not \(format.rawValue) records")
            }
            let records = try readTextDocuments(url)
            guard !records.isEmpty else { throw DatasetError.noRecords(file: url.path, skipped: 0) }
            var stats = ReadStats()
            stats.records = records.count
            return RecordSet(file: url.path, format: .languageModeling, records: records, stats: stats)
        }
        let reader = try JSONLReader(url: url, format: format, onBadRecord: onBadRecord)
        var records: [DatasetRecord] = []
        while let record = try reader.next() { records.append(record) }
        guard let detected = reader.format, !records.isEmpty else {
            throw DatasetError.noRecords(file: url.path, skipped: reader.stats.skipped)
        }
        return RecordSet(file: url.path, format: detected, records: records, stats: reader.stats)
    }

    /// Reads a training file and its validation split: the records of `validation` when given
    /// (read with the training file's format), else a seeded `validationFraction` of the
    /// training records (see `splitTrainValidation`).
    public static func readSplits(train: URL, validation: URL? = nil, validationFraction: Double = 0, seed: UInt64,
                                  format: DatasetFormat? = nil,
                                  onBadRecord: BadRecordPolicy = .fail) throws(DatasetError) -> (train: RecordSet, validation: RecordSet) {
        var trainSet = try read(train, format: format, onBadRecord: onBadRecord)
        if let validation {
            return (trainSet, try read(validation, format: trainSet.format, onBadRecord: onBadRecord))
        }
        let (trainRecords, validationRecords) = try splitTrainValidation(trainSet.records, validationFraction: validationFraction, seed: seed)
        trainSet.records = trainRecords
        let validationSet = RecordSet(file: train.path, format: trainSet.format, records: validationRecords)
        return (trainSet, validationSet)
    }

    private static func readTextDocuments(_ url: URL) throws(DatasetError) -> [DatasetRecord] {
        var lines = try LineReader(url: url)
        var records: [DatasetRecord] = []
        var paragraph: [UInt8] = []
        func flush() {
            guard !paragraph.isEmpty else { return }
            records.append(.text(String(decoding: paragraph, as: UTF8.self)))
            paragraph.removeAll(keepingCapacity: true)
        }
        while var line = try lines.next() {
            if line.last == 0x0D { line = line.dropLast() }
            if isBlank(line) {
                flush()
                continue
            }
            guard isValidUTF8(line) else { throw DatasetError.invalidUTF8(file: url.path, line: lines.lineNumber) }
            if !paragraph.isEmpty { paragraph.append(0x0A) }
            paragraph.append(contentsOf: line)
        }
        flush()
        return records
    }
}

/// Reads a file line by line in fixed-size chunks (also for other JSONL formats of the package).
package struct LineReader {
    private let handle: FileHandle
    private let file: String
    private var buffer: [UInt8] = []
    /// First byte of the current line in `buffer`.
    private var start = 0
    /// Bytes after `start` already searched for a newline.
    private var scanned = 0
    private var atEnd = false
    /// The 1-based number of the line `next()` returned last.
    package private(set) var lineNumber = 0
    static let chunkSize = 1 << 20

    package init(url: URL) throws(DatasetError) {
        file = url.path
        do {
            handle = try FileHandle(forReadingFrom: url)
        } catch {
            throw DatasetError.fileAccess(file: url.path, reason: "cannot be opened (\(error.localizedDescription))")
        }
    }

    /// The next line without its "\n" (the last line may lack one), or nil at the end of the file.
    package mutating func next() throws(DatasetError) -> ArraySlice<UInt8>? {
        while true {
            if let newline = buffer[(start + scanned)...].firstIndex(of: 0x0A) {
                let line = buffer[start..<newline]
                start = newline + 1
                scanned = 0
                lineNumber += 1
                return line
            }
            scanned = buffer.count - start
            if atEnd {
                guard start < buffer.count else { return nil }
                let line = buffer[start...]
                start = buffer.count
                scanned = 0
                lineNumber += 1
                return line
            }
            if start > 0 {
                buffer.removeSubrange(0..<start)
                start = 0
            }
            let chunk: Data?
            do {
                chunk = try handle.read(upToCount: Self.chunkSize)
            } catch {
                throw DatasetError.fileAccess(file: file, reason: "cannot be read (\(error.localizedDescription))")
            }
            if let chunk, !chunk.isEmpty {
                buffer.append(contentsOf: chunk)
            } else {
                atEnd = true
            }
        }
    }
}

/// One JSONL line as a JSON value; errors name `file:line` (and the column of a syntax error).
package func parseJSONLine(_ bytes: ArraySlice<UInt8>, file: String, line: Int) throws(DatasetError) -> JSONValue {
    guard isValidUTF8(bytes) else { throw DatasetError.invalidUTF8(file: file, line: line) }
    return try bytes.withUnsafeBufferPointer { (buffer) throws(DatasetError) -> JSONValue in
        do throws(JSONSyntaxError) {
            return try JSONParser.parse(buffer)
        } catch {
            let column = buffer.prefix(error.offset).reduce(1) { $1 & 0xC0 == 0x80 ? $0 : $0 + 1 }
            throw DatasetError.invalidJSON(file: file, line: line, column: column, reason: error.reason)
        }
    }
}

/// True for a line of spaces, tabs and carriage returns only.
package func isBlank(_ bytes: ArraySlice<UInt8>) -> Bool {
    bytes.allSatisfy { $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }
}

func isValidUTF8(_ bytes: ArraySlice<UInt8>) -> Bool {
    bytes.allSatisfy { $0 < 0x80 } || String(validating: bytes, as: UTF8.self) != nil
}
