//! Starting the ringdns binary for black-box tests.
