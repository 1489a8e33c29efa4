// Whether this build runs under AddressSanitizer, asked the same way of GCC (which defines
// __SANITIZE_ADDRESS__) and clang (which answers __has_feature(address_sanitizer)).
#pragma once

namespace tz {

#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool kAddressSanitizer = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
inline constexpr bool kAddressSanitizer = true;
#else
inline constexpr bool kAddressSanitizer = false;
#endif
#else
inline constexpr bool kAddressSanitizer = false;
#endif

}  // namespace tz
