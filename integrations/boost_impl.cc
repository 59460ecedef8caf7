// The only translation unit that compiles the non-template parts of Asio, Asio-SSL and Beast
// (BOOST_*_SEPARATE_COMPILATION is a PUBLIC definition of tracepager_boost).
#include <boost/asio/impl/src.hpp>
#include <boost/asio/ssl/impl/src.hpp>
#include <boost/beast/src.hpp>
