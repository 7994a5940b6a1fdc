// The HTTP/1.1 messages of the client port (http.h): a request parsed
// from the bytes received so far (Content-Length or chunked bodies, within
// the size limits), a response or a chunked stream formatted. The
// connections that carry them are http.cc's.
#include <string>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "server/http.h"

namespace etc::server {
namespace {

// A chunked body's framing may take as much room as its data (a body of
// 1-byte chunks is six times its size): past that, it only makes us scan.
constexpr size_t kMaxChunkedRequestBytes = 2 * kMaxHttpRequestBytes;
constexpr size_t kMaxChunkLineBytes = 1024;

}  // namespace

namespace {

// Where the chunked body starting at `begin` ends (0: not complete yet),
// appending its data to `body` unless that is null: the first pass, on
// every read, only walks the chunk sizes; the data is copied once.
absl::StatusOr<size_t> ChunkedBodyEnd(const std::string& data, size_t begin, std::string* body) {
  size_t pos = begin;
  size_t decoded = 0;
  for (;;) {
    size_t line_end = data.find("\r\n", pos);
    if (line_end == std::string::npos) {
      if (data.size() - pos > kMaxChunkLineBytes) return absl::InvalidArgumentError("malformed chunk size");
      return 0;
    }
    // The size in hex, then optional extensions after ';' (ignored).
    absl::string_view size_text(data.data() + pos, std::min(line_end - pos, data.find(';', pos) - pos));
    size_text = absl::StripTrailingAsciiWhitespace(size_text);
    size_t size = 0;
    if (size_text.empty() || size_text.size() > 8 ||
        !std::all_of(size_text.begin(), size_text.end(), absl::ascii_isxdigit) ||
        !absl::SimpleHexAtoi(size_text, &size)) {
      return absl::InvalidArgumentError("malformed chunk size");
    }
    pos = line_end + 2;
    if (size == 0) break;
    decoded += size;
    if (decoded > kMaxHttpRequestBytes || pos + size - begin > kMaxChunkedRequestBytes) {
      return absl::ResourceExhaustedError("request too large");
    }
    if (data.size() < pos + size + 2) return 0;
    if (data.compare(pos + size, 2, "\r\n") != 0) return absl::InvalidArgumentError("malformed chunk");
    if (body != nullptr) body->append(data, pos, size);
    pos += size + 2;
  }
  // Trailer fields (ignored), then an empty line.
  size_t trailers = pos;
  for (;;) {
    size_t line_end = data.find("\r\n", pos);
    if (line_end == std::string::npos) {
      if (data.size() - trailers > kMaxHttpHeaderBytes) return absl::InvalidArgumentError("trailers too large");
      return 0;
    }
    if (line_end == pos) return pos + 2;
    pos = line_end + 2;
  }
}

// The body's length from Content-Length, or its end if chunked.
absl::StatusOr<size_t> ReadBody(const std::string& data, size_t begin, HttpRequest* parsed) {
  auto encoding = parsed->headers.find("transfer-encoding");
  if (encoding != parsed->headers.end()) {
    // Both would let a proxy in front and this server disagree on where
    // the request ends.
    if (!absl::EqualsIgnoreCase(encoding->second, "chunked") ||
        parsed->headers.contains("content-length")) {
      return absl::InvalidArgumentError("unsupported Transfer-Encoding (only chunked, without Content-Length)");
    }
    absl::StatusOr<size_t> end = ChunkedBodyEnd(data, begin, nullptr);
    if (end.ok() && *end != 0) (void)ChunkedBodyEnd(data, begin, &parsed->body);
    return end;
  }
  size_t length = 0;
  auto it = parsed->headers.find("content-length");
  if (it != parsed->headers.end() && !absl::SimpleAtoi(it->second, &length)) {
    return absl::InvalidArgumentError("malformed Content-Length");
  }
  if (length > kMaxHttpRequestBytes) return absl::ResourceExhaustedError("request too large");
  if (data.size() < begin + length) return 0;
  parsed->body = data.substr(begin, length);
  return begin + length;
}

void AppendHead(std::string* out, const HttpResponse& response, bool keep_alive) {
  absl::StrAppend(out, "HTTP/1.1 ", response.status, " ", HttpStatusText(response.status),
                  "\r\nContent-Type: ", response.content_type);
  for (const auto& [name, value] : response.headers) {
    // A line break in a header would let its value write the response.
    if (absl::StrContains(name, '\n') || absl::StrContains(name, '\r') ||
        absl::StrContains(value, '\n') || absl::StrContains(value, '\r')) {
      continue;
    }
    absl::StrAppend(out, "\r\n", name, ": ", value);
  }
  if (!keep_alive) out->append("\r\nConnection: close");
}

void AppendChunk(std::string* out, absl::string_view data) {
  if (data.empty()) return;
  absl::StrAppend(out, absl::Hex(data.size()), "\r\n", data, "\r\n");
}

}  // namespace

absl::StatusOr<size_t> ParseHttpRequest(const std::string& data, HttpRequest* request) {
  size_t header_end = data.find("\r\n\r\n");
  if (header_end == std::string::npos) {
    if (data.size() > kMaxHttpHeaderBytes) return absl::InvalidArgumentError("headers too large");
    return 0;
  }
  std::vector<std::string> lines = absl::StrSplit(data.substr(0, header_end), "\r\n");
  std::vector<std::string> start = absl::StrSplit(lines[0], ' ');
  if (start.size() != 3 || !absl::StartsWith(start[2], "HTTP/1.") || start[1].empty() ||
      start[1][0] != '/') {
    return absl::InvalidArgumentError("malformed request line");
  }
  HttpRequest parsed;
  parsed.method = start[0];
  size_t question = start[1].find('?');
  parsed.path = start[1].substr(0, question);
  if (question != std::string::npos) parsed.query = start[1].substr(question + 1);
  for (size_t i = 1; i < lines.size(); ++i) {
    size_t colon = lines[i].find(':');
    if (colon == std::string::npos || colon == 0) return absl::InvalidArgumentError("malformed header");
    std::string name = absl::AsciiStrToLower(lines[i].substr(0, colon));
    parsed.headers[name] = std::string(absl::StripAsciiWhitespace(lines[i].substr(colon + 1)));
  }
  absl::StatusOr<size_t> end = ReadBody(data, header_end + 4, &parsed);
  if (!end.ok() || *end == 0) return end;
  *request = std::move(parsed);
  return end;
}

std::string FormatHttpResponse(const HttpResponse& response, bool keep_alive) {
  std::string out;
  AppendHead(&out, response, keep_alive);
  absl::StrAppend(&out, "\r\nContent-Length: ", response.body.size(), "\r\n\r\n", response.body);
  return out;
}

std::string FormatHttpStreamHead(const HttpResponse& head, bool keep_alive) {
  std::string out;
  AppendHead(&out, head, keep_alive);
  out.append("\r\nTransfer-Encoding: chunked\r\n\r\n");
  AppendChunk(&out, head.body);
  return out;
}

std::string FormatHttpChunk(const std::string& data) {
  std::string out;
  AppendChunk(&out, data);
  return out;
}

const char* HttpStatusText(int status) {
  switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 307: return "Temporary Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 412: return "Precondition Failed";
    case 413: return "Payload Too Large";
    case 415: return "Unsupported Media Type";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Unknown";
  }
}

AsyncHttpHandler Synchronous(HttpHandler handler) {
  return [handler = std::move(handler)](const HttpRequest& request,
                                        std::shared_ptr<HttpExchange> exchange) {
    exchange->Respond(handler(request));
  };
}

}  // namespace etc::server
