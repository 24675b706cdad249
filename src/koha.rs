//! Koha's `service.pl` and `svc/authentication` protocol: requests to build and answers to classify.
