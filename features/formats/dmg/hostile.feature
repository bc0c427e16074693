@format:dmg @op:read @spec:dmg
Feature: hostile dmg images are refused without harm
  A trailer, property list or chunk table that cannot be right, or a chunk the reader cannot
  decode, must be refused with an error naming it, without a crash, a hang, an unbounded
  allocation or any change to the file. The reference reads a property list or resource fork
  of at most 16 MiB (so at most about 300,000 chunks of 40 bytes), one chunk of at most 64 MiB
  of input and one decompressed chunk of at most 64 MiB (131072 sectors, QEMU's limit);
  decompression stops at the chunk's size. The base image is a 1 MiB disk in zlib chunks of
  64 sectors made by the fixture writer, 64 KiB written at each end.

  Scenario Outline: an image whose <defect> is refused
    Given a dmg image whose <defect>
    When the whole image is read
    Then the read is refused naming the damaged field
    And the image file is unchanged

    Examples:
      | defect                                          |
      | koly magic is missing                           |
      | file is 100 bytes long                          |
      | data fork offset is past the trailer            |
      | data fork length runs past the end of the file  |
      | plist offset is past the trailer                |
      | plist is not XML                                |
      | plist has no blkx array                         |
      | mish block declares 2 million chunks            |
      | a chunk points past the end of the data fork    |
      | a chunk is 2^40 bytes long                      |
      | a chunk has 2^31 sectors                        |
      | two chunks overlap                              |
      | a zlib chunk inflates beyond its sectors        |
      | a chunk is lzfse compressed                     |
