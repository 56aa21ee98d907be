#!/usr/bin/env bash
# e2e (no servers): the references in docs/ resolve and cite nothing outside
# the repository.
#   1. every relative Markdown link in docs/*.md, README.md, CHANGELOG.md and
#      bench/README.md names a file that exists and, with #anchor, a heading
#      of that file (GitHub's anchor: lower case, punctuation dropped, spaces
#      as "-");
#   2. every `docs/NAME.md` cited by a tracked file exists, and a cited
#      section (`docs/NAME.md "Section"`, `docs/NAME.md, "Section"` or
#      `docs/NAME.md ("Section"`) is the start of one of its headings;
#   3. no citation of the outside contract (the word S-P-E-C) in any tracked file but the frozen 1.0 script (the contract
#      file is not in the repository: the docs/ pages are the reference).
# Prints one line per problem and exits 1 if there is any.  KNOWN_STALE lists
# citations in files the docs change could not edit (file, doc, section):
# they are printed as notes, not failures; remove an entry once it is fixed.
KNOWN_STALE=''
export KNOWN_STALE
cd "$(dirname "$0")/../.." || exit 1
command -v git >/dev/null && git rev-parse --git-dir >/dev/null 2>&1 || { echo "docs_links: not a git checkout"; exit 1; }
perl -e '
use strict; use warnings;
my $bad = 0;
my %heads;   # file -> { slug => 1 }, and file -> [ heading texts ]
my %texts;
sub load { my $f = shift; return if $heads{$f};
  $heads{$f} = {}; $texts{$f} = [];
  open my $h, "<", $f or return; my $fence = 0;
  while (<$h>) {
    $fence = !$fence if /^```/; next if $fence;
    next unless /^#{1,6}\s+(.*?)\s*$/;
    my $t = $1; push @{$texts{$f}}, $t;
    (my $s = lc $t) =~ s/[^a-z0-9 _\-]//g; $s =~ s/ /-/g;
    my $n = $s; my $i = 1; while ($heads{$f}{$n}) { $n = "$s-" . $i++ } $heads{$f}{$n} = 1;
  }
}
sub norm { my $t = shift; $t =~ s/[`*]//g; return lc $t }
# 1. Markdown links
my @md = (glob("docs/*.md"), "README.md", "CHANGELOG.md", "bench/README.md");
for my $f (@md) {
  open my $h, "<", $f or next; my $fence = 0; my $ln = 0;
  (my $dir = $f) =~ s{[^/]*$}{};
  while (my $l = <$h>) { $ln++;
    $fence = !$fence if $l =~ /^```/; next if $fence;
    while ($l =~ /\]\(([^)\s]+)\)/g) {
      my $t = $1; next if $t =~ m{^[a-z]+:}i;
      my ($path, $anchor) = split /#/, $t, 2;
      my $target = $path eq "" ? $f : "$dir$path";
      1 while $target =~ s{[^/]+/\.\./}{};
      if (!-e $target) { print "$f:$ln: link to $t: no file $target\n"; $bad++; next }
      next unless defined $anchor && $target =~ /\.md$/;
      load($target);
      if (!$heads{$target}{$anchor}) { print "$f:$ln: link to $t: no heading #$anchor in $target\n"; $bad++ }
    }
  }
}
# 2. citations of docs/NAME.md in tracked files
for my $f (split /\n/, `git ls-files`) {
  next if $f =~ m{^test/e2e/docs_links\.sh$} || !-f $f || -B $f;
  open my $h, "<", $f or next; my $ln = 0;
  while (my $l = <$h>) { $ln++;
    while ($l =~ m{\bdocs/([A-Za-z0-9_\-]+\.md)(?:,? \(?"([^"]+)")?}g) {
      my ($doc, $sec) = ("docs/$1", $2);
      if (!-e $doc) { print "$f:$ln: cites $doc, which does not exist\n"; $bad++; next }
      next unless defined $sec;
      load($doc);
      my $s = norm($sec);
      if (!grep { index(norm($_), $s) == 0 } @{$texts{$doc}}) {
        if (grep { $_ eq "$f|$doc|$sec" } split /\n/, $ENV{KNOWN_STALE}) {
          print "note: $f:$ln: cites $doc \"$sec\", which is gone (known; fix the citation)\n";
        } else { print "$f:$ln: cites $doc \"$sec\": no heading starts so\n"; $bad++ }
      }
    }
  }
}
# 3. no citation of the outside contract anywhere in the repository: the code and docs cite docs/.  Not
# checked: the released 1.0 install script (frozen: never edited again) and
# this file, which names the word.
for my $f (split /\n/, `git ls-files`) {
  next if $f eq "sql/sharecount--1.0.sql" || $f eq "test/e2e/docs_links.sh";
  next if -B $f; open my $h, "<", $f or next; my $ln = 0;
  while (my $l = <$h>) { $ln++; if ($l =~ /\bS[P]EC\b/) { print "$f:$ln: cites the outside contract: $l"; $bad++ } }
}
print "$bad problem(s)\n" if $bad;
exit($bad ? 1 : 0);
'
