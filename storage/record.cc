#include "storage/record.h"

#include "absl/strings/str_cat.h"
#include "base/check.h"
#include "base/crc32c.h"
#include "base/little_endian.h"

namespace etc::storage {
namespace {

bool KnownType(uint8_t type) {
  return type >= static_cast<uint8_t>(RecordType::kSegmentHeader) &&
         type <= static_cast<uint8_t>(RecordType::kFileContent);
}

}  // namespace

absl::Status CheckRecordPayloadBytes(uint64_t payload_bytes, std::string_view what) {
  if (payload_bytes <= kMaxRecordPayloadBytes) return absl::OkStatus();
  return absl::ResourceExhaustedError(absl::StrCat(std::string(what), " of ", payload_bytes,
                                                   " bytes is larger than a log record holds (",
                                                   kMaxRecordPayloadBytes, ")"));
}

void AppendRecord(RecordType type, std::string_view payload, std::string* out) {
  // Past the limit the reader would refuse the record; past 4 GiB the
  // length would not even fit its field.
  ETC_CHECK_LE(payload.size(), kMaxRecordPayloadBytes);
  char header[kRecordHeaderBytes];
  base::PutLittleEndian32(static_cast<uint32_t>(payload.size()), header);
  header[4] = static_cast<char>(type);
  base::PutLittleEndian32(base::Crc32c(std::string_view(header, 5)), header + 5);
  base::PutLittleEndian32(base::Crc32c(payload), header + 9);
  out->append(header, kRecordHeaderBytes);
  out->append(payload);
  out->push_back(kRecordEndMark);
}

std::string EncodeRecord(RecordType type, std::string_view payload) {
  std::string out;
  out.reserve(kRecordHeaderBytes + payload.size() + 1);
  AppendRecord(type, payload, &out);
  return out;
}

bool AllZero(std::string_view data, size_t offset) {
  for (size_t i = offset; i < data.size(); ++i) {
    if (data[i] != 0) return false;
  }
  return true;
}

DecodedRecord DecodeRecord(std::string_view data, size_t offset) {
  DecodedRecord record;
  if (offset > data.size()) return record;
  std::string_view rest = data.substr(offset);
  if (rest.size() < kRecordHeaderBytes) {
    record.status = AllZero(rest, 0) ? DecodedRecord::kZeros : DecodedRecord::kTruncated;
    return record;
  }
  if (AllZero(rest.substr(0, kRecordHeaderBytes), 0)) {
    record.status = DecodedRecord::kZeros;
    return record;
  }
  uint32_t length = base::GetLittleEndian32(rest.data());
  auto type = static_cast<uint8_t>(rest[4]);
  if (base::GetLittleEndian32(rest.data() + 5) != base::Crc32c(rest.substr(0, 5)) || !KnownType(type) ||
      length > kMaxRecordPayloadBytes) {
    record.status = DecodedRecord::kCorrupt;
    return record;
  }
  record.header_ok = true;
  record.end_offset = offset + kRecordHeaderBytes + length + 1;
  if (rest.size() < kRecordHeaderBytes + length + 1) {
    record.status = DecodedRecord::kTruncated;
    return record;
  }
  std::string_view payload = rest.substr(kRecordHeaderBytes, length);
  if (base::GetLittleEndian32(rest.data() + 9) != base::Crc32c(payload) ||
      rest[kRecordHeaderBytes + length] != kRecordEndMark) {
    record.status = DecodedRecord::kCorrupt;
    return record;
  }
  record.status = DecodedRecord::kOk;
  record.type = static_cast<RecordType>(type);
  record.payload = payload;
  record.next_offset = record.end_offset;
  return record;
}

}  // namespace etc::storage
