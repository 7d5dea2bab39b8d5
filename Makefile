# berth: build, install, uninstall. Needs Rust >= 1.85 (rustup), a C linker and, to install
# into /usr/local, root.
#   make            build the release binary
#   make install    install berth, its shell completions and man pages under $(PREFIX)
#   make uninstall  remove them again
PREFIX ?= /usr/local
DESTDIR ?=
BIN := target/x86_64-unknown-linux-gnu/release/berth
bindir := $(DESTDIR)$(PREFIX)/bin
sharedir := $(DESTDIR)$(PREFIX)/share

.PHONY: all build install uninstall
all: build

build:
	cargo build --release

install: build
	install -D -m 0755 $(BIN) $(bindir)/berth
	install -d $(sharedir)/bash-completion/completions $(sharedir)/zsh/site-functions \
		$(sharedir)/fish/vendor_completions.d $(sharedir)/man/man8
	$(BIN) completion bash > $(sharedir)/bash-completion/completions/berth
	$(BIN) completion zsh > $(sharedir)/zsh/site-functions/_berth
	$(BIN) completion fish > $(sharedir)/fish/vendor_completions.d/berth.fish
	$(BIN) man-pages $(sharedir)/man/man8

uninstall:
	rm -f $(bindir)/berth $(sharedir)/bash-completion/completions/berth \
		$(sharedir)/zsh/site-functions/_berth $(sharedir)/fish/vendor_completions.d/berth.fish \
		$(sharedir)/man/man8/berth.8 $(sharedir)/man/man8/berth-*.8
