// Assertions for broken invariants.
//
// Recoverable outcomes are absl::Status; a broken invariant means the process
// holds state it cannot trust, so it stops loudly with the file, line, the
// condition and an optional streamed explanation:
//
//   ETC_CHECK(committed <= last_index) << "commit " << committed << " past log end";
//   ETC_CHECK_LE(committed, last_index);   // also prints both values
//
// ETC_DCHECK* compile to nothing (the operands are not evaluated) under NDEBUG,
// for checks too expensive for optimized builds.
#ifndef ETC_BASE_CHECK_H_
#define ETC_BASE_CHECK_H_

#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>

namespace etc::base {

// Collects the message of a failed check and aborts when destroyed, at the end
// of the full expression that streamed into it.
class CheckFailure {
 public:
  CheckFailure(const char* file, int line, const char* condition) {
    stream_ << file << ":" << line << ": check failed: " << condition;
  }
  CheckFailure(const CheckFailure&) = delete;
  CheckFailure& operator=(const CheckFailure&) = delete;
  [[noreturn]] ~CheckFailure() {
    std::string text = stream_.str();
    std::fprintf(stderr, "%s\n", text.c_str());
    std::fflush(stderr);
    std::abort();
  }
  std::ostream& stream() { return stream_ << " "; }

 private:
  std::ostringstream stream_;
};

// Lets `cond ? (void)0 : Voidify() & stream` type-check: & binds looser than <<.
struct Voidify {
  void operator&(std::ostream&) {}
};

template <typename A, typename B>
std::string FormatOperands(const A& a, const B& b) {
  std::ostringstream out;
  out << "(" << a << " vs " << b << ")";
  return out.str();
}

}  // namespace etc::base

#define ETC_CHECK(condition)                \
  (condition) ? (void)0                     \
              : ::etc::base::Voidify() &    \
                    ::etc::base::CheckFailure(__FILE__, __LINE__, #condition).stream()

#define ETC_CHECK_OP_(a, op, b)                                                          \
  ((a)op(b)) ? (void)0                                                                   \
             : ::etc::base::Voidify() &                                                  \
                   ::etc::base::CheckFailure(__FILE__, __LINE__, #a " " #op " " #b).stream() \
                       << ::etc::base::FormatOperands((a), (b)) << " "

#define ETC_CHECK_EQ(a, b) ETC_CHECK_OP_(a, ==, b)
#define ETC_CHECK_NE(a, b) ETC_CHECK_OP_(a, !=, b)
#define ETC_CHECK_LE(a, b) ETC_CHECK_OP_(a, <=, b)
#define ETC_CHECK_LT(a, b) ETC_CHECK_OP_(a, <, b)
#define ETC_CHECK_GE(a, b) ETC_CHECK_OP_(a, >=, b)
#define ETC_CHECK_GT(a, b) ETC_CHECK_OP_(a, >, b)

#ifdef NDEBUG
#define ETC_DCHECK(condition) \
  while (false) ETC_CHECK(condition)
#define ETC_DCHECK_LE(a, b) \
  while (false) ETC_CHECK_LE(a, b)
#else
#define ETC_DCHECK(condition) ETC_CHECK(condition)
#define ETC_DCHECK_LE(a, b) ETC_CHECK_LE(a, b)
#endif

#endif  // ETC_BASE_CHECK_H_
