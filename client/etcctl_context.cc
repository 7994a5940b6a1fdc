// Context: the connection a handler uses and the one way errors are told.
#include <termios.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_certificate_verifier.h>
#include <grpcpp/security/tls_credentials_options.h>

#include "absl/strings/match.h"
#include "absl/strings/str_join.h"
#include "client/etcctl_command.h"
#include "client/etcctl_output.h"

namespace etc::etcctl {
namespace {

absl::StatusOr<std::string> ReadFile(const std::string& path, const std::string& flag) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::InvalidArgumentError("open " + path + ": cannot read the file given to --" + flag);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> Credentials(const GlobalOptions& global) {
  if (global.cacert.empty() && global.cert.empty() && global.key.empty() &&
      !global.insecure_skip_tls_verify) {
    return std::shared_ptr<grpc::ChannelCredentials>();  // plaintext
  }
  grpc::SslCredentialsOptions ssl;
  for (auto [path, flag, into] : {std::tuple{&global.cacert, "cacert", &ssl.pem_root_certs},
                                  std::tuple{&global.cert, "cert", &ssl.pem_cert_chain},
                                  std::tuple{&global.key, "key", &ssl.pem_private_key}}) {
    if (path->empty()) continue;
    absl::StatusOr<std::string> pem = ReadFile(*path, flag);
    if (!pem.ok()) return pem.status();
    *into = *pem;
  }
  if (global.insecure_skip_tls_verify) {
    // gRPC's SslCredentials always verifies; the TLS credentials API can skip it.
    grpc::experimental::TlsChannelCredentialsOptions tls;
    if (!ssl.pem_cert_chain.empty()) {
      tls.set_certificate_provider(std::make_shared<grpc::experimental::StaticDataCertificateProvider>(
          std::vector<grpc::experimental::IdentityKeyCertPair>{{ssl.pem_private_key, ssl.pem_cert_chain}}));
      tls.watch_identity_key_cert_pairs();
    }
    tls.set_verify_server_certs(false);
    tls.set_certificate_verifier(std::make_shared<grpc::experimental::NoOpCertificateVerifier>());
    tls.set_check_call_host(false);
    return grpc::experimental::TlsCredentials(tls);
  }
  return grpc::SslCredentials(ssl);
}

}  // namespace

std::string ErrorText(const absl::Status& status, const GlobalOptions& global) {
  std::string where = absl::StrJoin(global.endpoints, ",");
  if (status.code() == absl::StatusCode::kDeadlineExceeded) {
    return "context deadline exceeded (is etc running at " + where +
           "? set --endpoints, or a longer --command-timeout)";
  }
  if (status.code() == absl::StatusCode::kUnavailable &&
      (absl::StartsWith(status.message(), "cannot connect") ||
       absl::StartsWith(status.message(), "no endpoint answered"))) {
    return "context deadline exceeded (is etc running at " + where + "? set --endpoints)";
  }
  return std::string(status.message());
}

client::ClientOptions Context::ClientOptionsFor(std::vector<std::string> endpoints) const {
  client::ClientOptions options;
  options.endpoints = std::move(endpoints);
  options.dial_timeout = global.dial_timeout;
  options.request_timeout = global.command_timeout;
  options.user = global.user;
  options.password = global.password;
  if (!global.user.empty() && global.password.empty()) {
    size_t colon = global.user.find(':');
    if (colon != std::string::npos) {
      options.user = global.user.substr(0, colon);
      options.password = global.user.substr(colon + 1);
    } else {
      options.password = AskHidden("Password: ");
    }
  }
  return options;
}

client::Client* Context::Client() {
  if (client_ != nullptr) return client_.get();
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials = Credentials(global);
  if (!credentials.ok()) {
    // A certificate flag naming no readable file: the command line is wrong.
    Usage(credentials.status());
    std::fflush(stderr);
    std::quick_exit(kExitUsage);
  }
  client::ClientOptions options = ClientOptionsFor(global.endpoints);
  options.credentials = *credentials;
  absl::StatusOr<std::unique_ptr<client::Client>> connected = client::Client::Connect(options);
  if (!connected.ok()) {
    Fail(connected.status());
    return nullptr;
  }
  client_ = std::move(*connected);
  return client_.get();
}

absl::StatusOr<std::unique_ptr<client::Client>> Context::ClientFor(const std::string& endpoint) const {
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials = Credentials(global);
  if (!credentials.ok()) return credentials.status();
  client::ClientOptions options = ClientOptionsFor({endpoint});
  options.credentials = *credentials;
  return client::Client::Connect(options);
}

std::string AskHidden(const std::string& prompt) {
  std::fprintf(stderr, "%s", prompt.c_str());
  std::fflush(stderr);
  termios old_mode{};
  bool tty = isatty(0) && tcgetattr(0, &old_mode) == 0;
  if (tty) {
    termios silent = old_mode;
    silent.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    tcsetattr(0, TCSANOW, &silent);
  }
  std::string answer;
  std::getline(std::cin, answer);
  if (tty) {
    tcsetattr(0, TCSANOW, &old_mode);
    std::fprintf(stderr, "\n");
  }
  return answer;
}

int Context::Fail(const absl::Status& status) const { return Fail(ErrorText(status, global)); }

int Context::Fail(std::string_view message) const {
  std::fflush(stdout);
  if (global.color_stderr) {
    std::fprintf(stderr, "\033[31mError:\033[0m %.*s\n", static_cast<int>(message.size()), message.data());
  } else {
    std::fprintf(stderr, "Error: %.*s\n", static_cast<int>(message.size()), message.data());
  }
  return kExitError;
}

int Context::Usage(std::string_view message) const {
  (void)Fail(message);
  return kExitUsage;
}

}  // namespace etc::etcctl
