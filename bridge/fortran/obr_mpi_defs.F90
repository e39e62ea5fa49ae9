!> Definitions exchanged at end of definitions by the MPI backend, their
!! validation, and the routes they give (overlaps, their messages, pack/unpack).
!! Mirrors bridge/handshake.py record for record: every rank of
!! every component gathers all definitions and reaches the same verdict, so an
!! error stops both sides with the same message and nobody waits in vain.
module obr_mpi_defs
   use, intrinsic :: iso_c_binding, only: c_loc, c_f_pointer
   use obr_core
   implicit none
   private

   public :: fdef_t, rankdefs_t, coupling_t, route_t, REC_LEN, PROTOCOL_VERSION, CHUNK, TRAILER
   public :: defs_encode, defs_decode, defs_validate, defs_routes, defs_first_ranks
   public :: route_nchunks, route_chunk, route_pack, route_unpack, route_whole_rows, chunk_in_array
   public :: defs_unowned, GAP_FILL

   integer, parameter :: REC_LEN = 160   !< fixed record width, as handshake.RECORD_LEN
   integer, parameter :: IW = 12         !< width of an integer in a record
   !> Wire protocol spoken, in the header record's last VERSION_WIDTH characters (as handshake.PROTOCOL_VERSION;
   !! bump both with every change of what travels on the wire). Blank there: the unversioned code, version 1.
   integer, parameter :: PROTOCOL_VERSION = 4
   integer, parameter :: UNVERSIONED = 1, VERSION_WIDTH = 8
   !> A route travels as chunks of whole rows of one level, of at most CHUNK points unless one row is
   !! longer (as handshake.CHUNK), then a trailer of TRAILER int64: step, tag, NaN/Inf count, rejected.
   integer, parameter :: CHUNK = 1048576
   integer, parameter :: TRAILER = 4
   !> What a rank receives at the points of its box that no rank of the sending side owns (a side that declared
   !! gaps: land-only subdomains removed), as partition.GAP_FILL: the land value of NEMO's fields and of a mask.
   real(dp), parameter :: GAP_FILL = 0._dp

   !> One field as one component declares it.
   type :: fdef_t
      character(len=OBR_NAME_LEN) :: name = ''   !< field name
      character(len=OBR_NAME_LEN) :: peer = ''   !< peer component, '' for "the only other one"
      integer :: dir = 0                         !< OBR_IN or OBR_OUT
      integer :: nlev = 0                        !< number of levels
   end type fdef_t

   !> Everything one rank declared.
   type :: rankdefs_t
      character(len=OBR_NAME_LEN) :: comp = ''   !< component name
      integer :: box(6) = 0                      !< nx, ny, i0, j0, ni, nj
      integer :: protocol = PROTOCOL_VERSION     !< wire protocol version of the code that wrote the records
      logical :: gaps = .false.                  !< its component's ranks may cover only part of the grid (land)
      type(fdef_t), allocatable :: f(:)          !< its fields in definition order
   end type rankdefs_t

   !> One field travelling from component src to component dst.
   type :: coupling_t
      integer :: tag = -1                        !< MPI tag: the coupling index
      integer :: src = -1, dst = -1              !< first world rank of each component
      integer :: src_fld = 0, dst_fld = 0        !< field index in each component's list
   end type coupling_t

   !> Points exchanged with one peer rank: a box of global indices.
   type :: route_t
      integer :: peer = -1                       !< world rank of the peer
      integer :: i0 = 0, j0 = 0, ni = 0, nj = 0  !< the overlap, 0-based global offsets
   end type route_t

contains

   !> The records of this rank, as handshake.encode writes them.
   function defs_encode(comp, box, f, nf, gaps) result(buf)
      character(len=*), intent(in) :: comp       !< component name
      integer, intent(in) :: box(6)              !< nx, ny, i0, j0, ni, nj
      type(fdef_t), intent(in) :: f(:)           !< field table
      integer, intent(in) :: nf                  !< number of fields in use
      logical, intent(in) :: gaps                !< the component's ranks may cover only part of the grid
      character(len=:), allocatable :: buf
      character(len=REC_LEN) :: rec
      integer :: k
      write (rec, '(a4,a64,7i12)') 'OBRH', comp, box, nf
      write (rec(REC_LEN - VERSION_WIDTH + 1:), '(i8)') PROTOCOL_VERSION
      buf = rec
      do k = 1, nf
         write (rec, '(a4,a64,a64,2i12)') 'OBRF', f(k)%name, f(k)%peer, f(k)%dir, f(k)%nlev
         buf = buf//rec
      end do
      write (rec, '(a4,i12)') 'OBRP', merge(1, 0, gaps)   ! the partition record (version 4)
      buf = buf//rec
   end function defs_encode

   !> Parse the records one rank sent.
   subroutine defs_decode(buf, rd)
      character(len=*), intent(in) :: buf        !< that rank's records
      type(rankdefs_t), intent(out) :: rd        !< its definitions
      integer :: nf, k, off, ios
      read (buf(5:4 + OBR_NAME_LEN), '(a)') rd%comp
      read (buf(5 + OBR_NAME_LEN:), '(7i12)') rd%box, nf
      rd%protocol = UNVERSIONED   ! blank: written by the unversioned code
      if (len_trim(buf(REC_LEN - VERSION_WIDTH + 1:REC_LEN)) > 0) then
         read (buf(REC_LEN - VERSION_WIDTH + 1:REC_LEN), '(i8)', iostat=ios) rd%protocol
         if (ios /= 0) rd%protocol = -1
      end if
      allocate (rd%f(nf))
      do k = 1, nf
         off = k*REC_LEN
         rd%f(k)%name = buf(off + 5:off + 4 + OBR_NAME_LEN)
         rd%f(k)%peer = buf(off + 5 + OBR_NAME_LEN:off + 4 + 2*OBR_NAME_LEN)
         read (buf(off + 5 + 2*OBR_NAME_LEN:off + REC_LEN), '(2i12)') rd%f(k)%dir, rd%f(k)%nlev
      end do
      off = (nf + 1)*REC_LEN   ! the partition record (version 4)
      rd%gaps = .false.
      if (len(buf) >= off + REC_LEN) then
         if (buf(off + 1:off + 4) == 'OBRP') then
            read (buf(off + 5:off + 4 + IW), '(i12)', iostat=ios) k
            rd%gaps = ios == 0 .and. k == 1
         end if
      end if
   end subroutine defs_decode

   !> first(r): the first world rank of rank r's component (its identity).
   function defs_first_ranks(rd) result(first)
      type(rankdefs_t), intent(in) :: rd(0:)     !< all ranks' definitions
      integer :: first(0:size(rd) - 1)
      integer :: r, q
      do r = 0, size(rd) - 1
         first(r) = r
         do q = 0, r - 1
            if (rd(q)%comp == rd(r)%comp) then
               first(r) = q
               exit
            end if
         end do
      end do
   end function defs_first_ranks

   !> Validate all definitions and pair each output with its input.
   !! msg is '' on success, else the reason naming component, field and shapes.
   subroutine defs_validate(rd, cpl, ncpl, msg)
      type(rankdefs_t), intent(in) :: rd(0:)           !< all ranks' definitions
      type(coupling_t), allocatable, intent(out) :: cpl(:)  !< couplings, tag order
      integer, intent(out) :: ncpl                     !< number of couplings
      character(len=*), intent(out) :: msg             !< '' or the error
      integer :: first(0:size(rd) - 1), c, k
      first = defs_first_ranks(rd)
      msg = ''
      ncpl = 0
      allocate (cpl(sum([(size(rd(c)%f), c=0, size(rd) - 1)]) + 1))
      call check_protocol(rd, msg); if (msg /= '') return
      do c = 0, size(rd) - 1
         if (first(c) /= c) cycle
         call check_tiling(rd, first, c, msg); if (msg /= '') return
         call check_same_fields(rd, first, c, msg); if (msg /= '') return
      end do
      do c = 0, size(rd) - 1
         if (first(c) /= c) cycle
         do k = 1, size(rd(c)%f)
            if (rd(c)%f(k)%dir /= OBR_OUT) cycle
            ncpl = ncpl + 1
            cpl(ncpl)%tag = ncpl - 1
            call pair(rd, first, c, k, cpl(ncpl), msg); if (msg /= '') return
         end do
      end do
      call check_inputs_matched(rd, first, cpl(:ncpl), msg)
   end subroutine defs_validate

   !> The first rank whose records carry another wire protocol version, named (as handshake.check_protocol).
   subroutine check_protocol(rd, msg)
      type(rankdefs_t), intent(in) :: rd(0:)     !< all definitions
      character(len=*), intent(inout) :: msg     !< error text, unchanged if fine
      integer :: r
      do r = 0, size(rd) - 1
         if (rd(r)%protocol == PROTOCOL_VERSION) cycle
         msg = 'rank '//core_itoa(r)//' (component '''//trim(rd(r)%comp)//''') speaks bridge protocol version '// &
               core_itoa(rd(r)%protocol)//', '//trim(merge('older', 'newer', rd(r)%protocol < PROTOCOL_VERSION))// &
               ' than this rank''s version '//core_itoa(PROTOCOL_VERSION)//': the two sides were built from '// &
               'different oceanbridge versions; rerun `oceanbridge install` and rebuild the model'
         return
      end do
   end subroutine check_protocol

   subroutine check_tiling(rd, first, c, msg)
      type(rankdefs_t), intent(in) :: rd(0:)     !< all definitions
      integer, intent(in) :: first(0:)           !< component identity per rank
      integer, intent(in) :: c                   !< the component (its first rank)
      character(len=*), intent(inout) :: msg     !< error text, unchanged if fine
      integer :: a, b, ov(4)
      integer(i8) :: covered
      call check_same_gaps(rd, first, c, msg); if (msg /= '') return
      covered = 0
      do a = c, size(rd) - 1
         if (first(a) /= c) cycle
         if (any(rd(a)%box(1:2) /= rd(c)%box(1:2))) then
            msg = 'component '''//trim(rd(c)%comp)//''': ranks disagree on the global grid (rank '// &
                  core_itoa(c)//': '//shape_txt(rd(c)%box)//', rank '//core_itoa(a)//': '//shape_txt(rd(a)%box)//')'
            return
         end if
         covered = covered + int(rd(a)%box(5), i8)*rd(a)%box(6)
         do b = a + 1, size(rd) - 1
            if (first(b) /= c) cycle
            if (overlap(rd(a)%box, rd(b)%box, ov)) then
               msg = 'component '''//trim(rd(c)%comp)//''': partitions of ranks '//core_itoa(a)//' and '// &
                     core_itoa(b)//' overlap at i='//core_itoa(ov(1))//'..'//core_itoa(ov(1) + ov(3) - 1)// &
                     ', j='//core_itoa(ov(2))//'..'//core_itoa(ov(2) + ov(4) - 1)
               return
            end if
         end do
      end do
      if (covered /= int(rd(c)%box(1), i8)*rd(c)%box(2) .and. .not. rd(c)%gaps) then
         msg = 'component '''//trim(rd(c)%comp)//''': partitions leave a gap: they cover '// &
               core_itoa(int(covered))//' of '//shape_txt(rd(c)%box)//'='// &
               core_itoa(rd(c)%box(1)*rd(c)%box(2))//' points (first missing point: '// &
               first_gap(rd, first, c)//'); if no rank owns those points because they are land (land-only '// &
               'subdomains removed), declare it: def_partition(box, gaps=True) (Fortran: '// &
               'obr_def_partition(..., ld_gaps=.true.))'
      end if
   end subroutine check_tiling

   !> Every rank of component c declares gaps, or none does (as handshake._gaps).
   subroutine check_same_gaps(rd, first, c, msg)
      type(rankdefs_t), intent(in) :: rd(0:)     !< all definitions
      integer, intent(in) :: first(0:)           !< component identity per rank
      integer, intent(in) :: c                   !< the component (its first rank)
      character(len=*), intent(inout) :: msg     !< error text, unchanged if fine
      character(len=:), allocatable :: yes, no
      integer :: a
      yes = ''
      no = ''
      do a = c, size(rd) - 1
         if (first(a) /= c) cycle
         if (rd(a)%gaps) then
            yes = yes//trim(merge(', ', '  ', len(yes) > 0))//core_itoa(a)
         else
            no = no//trim(merge(', ', '  ', len(no) > 0))//core_itoa(a)
         end if
      end do
      if (len(yes) > 0 .and. len(no) > 0) then
         msg = 'component '''//trim(rd(c)%comp)//''': ranks ['//yes//'] declare gaps in the partition '// &
               '(gaps=True) but ranks ['//no//'] do not; every rank of a component must declare the same'
      end if
   end subroutine check_same_gaps

   !> 'i=I, j=J': the first point (row by row) that no rank of component c owns; called on error only.
   function first_gap(rd, first, c) result(txt)
      type(rankdefs_t), intent(in) :: rd(0:)     !< all definitions
      integer, intent(in) :: first(0:)           !< component identity per rank
      integer, intent(in) :: c                   !< the component (its first rank)
      character(len=:), allocatable :: txt
      logical, allocatable :: covered(:, :)
      integer :: a, at(2)
      allocate (covered(0:rd(c)%box(1) - 1, 0:rd(c)%box(2) - 1))
      covered = .false.
      do a = c, size(rd) - 1
         if (first(a) /= c) cycle
         covered(rd(a)%box(3):rd(a)%box(3) + rd(a)%box(5) - 1, rd(a)%box(4):rd(a)%box(4) + rd(a)%box(6) - 1) = .true.
      end do
      at = findloc(transpose(covered), .false.) - 1   ! (j, i) of the first missing point, rows first
      txt = 'i='//core_itoa(at(2))//', j='//core_itoa(at(1))
   end function first_gap

   !> The points of this rank's box (ni, nj) that no route covers: a peer that declared gaps owns none there.
   !! Left unallocated when the routes cover the box (the usual case, which costs nothing at run time).
   subroutine defs_unowned(box, routes, unowned)
      integer, intent(in) :: box(6)                       !< this rank's box: nx, ny, i0, j0, ni, nj
      type(route_t), intent(in) :: routes(:)              !< its routes (disjoint boxes inside it)
      logical, allocatable, intent(out) :: unowned(:, :)  !< (ni, nj): .true. where no sender owns the point
      integer :: r
      if (sum([(int(routes(r)%ni, i8)*routes(r)%nj, r=1, size(routes))]) == int(box(5), i8)*box(6)) return
      allocate (unowned(box(5), box(6)))
      unowned = .true.
      do r = 1, size(routes)
         unowned(routes(r)%i0 - box(3) + 1:routes(r)%i0 - box(3) + routes(r)%ni, &
                 routes(r)%j0 - box(4) + 1:routes(r)%j0 - box(4) + routes(r)%nj) = .false.
      end do
   end subroutine defs_unowned

   subroutine check_same_fields(rd, first, c, msg)
      type(rankdefs_t), intent(in) :: rd(0:)     !< all definitions
      integer, intent(in) :: first(0:)           !< component identity per rank
      integer, intent(in) :: c                   !< the component (its first rank)
      character(len=*), intent(inout) :: msg     !< error text, unchanged if fine
      integer :: a, k
      logical :: same
      do a = c + 1, size(rd) - 1
         if (first(a) /= c) cycle
         same = size(rd(a)%f) == size(rd(c)%f)
         if (same) then
            do k = 1, size(rd(c)%f)
               same = same .and. rd(a)%f(k)%name == rd(c)%f(k)%name .and. rd(a)%f(k)%peer == rd(c)%f(k)%peer &
                      .and. rd(a)%f(k)%dir == rd(c)%f(k)%dir .and. rd(a)%f(k)%nlev == rd(c)%f(k)%nlev
            end do
         end if
         if (.not. same) then
            msg = 'component '''//trim(rd(c)%comp)//''': rank '//core_itoa(a)//' defines other fields than rank ' &
                  //core_itoa(c)//'; every rank of a component must define the same fields'
            return
         end if
      end do
   end subroutine check_same_fields

   !> Find the unique input matching output field k of component c.
   subroutine pair(rd, first, c, k, cp, msg)
      type(rankdefs_t), intent(in) :: rd(0:)     !< all definitions
      integer, intent(in) :: first(0:)           !< component identity per rank
      integer, intent(in) :: c, k                !< the sending component and its field
      type(coupling_t), intent(inout) :: cp      !< the coupling found
      character(len=*), intent(inout) :: msg     !< error text, unchanged if fine
      integer :: d, g, nfound
      type(fdef_t) :: f
      f = rd(c)%f(k)
      nfound = 0
      do d = 0, size(rd) - 1
         if (first(d) /= d .or. .not. accepts(rd(c)%comp, f, rd(d)%comp)) cycle
         do g = 1, size(rd(d)%f)
            if (rd(d)%f(g)%dir /= OBR_IN .or. rd(d)%f(g)%name /= f%name) cycle
            if (.not. accepts(rd(d)%comp, rd(d)%f(g), rd(c)%comp)) cycle
            nfound = nfound + 1
            cp%src = c; cp%src_fld = k; cp%dst = d; cp%dst_fld = g
         end do
      end do
      if (nfound == 0) then
         msg = 'field '''//trim(f%name)//''' (out, component '''//trim(rd(c)%comp)// &
               '''): no component receives it; is the peer launched and does it define '''// &
               trim(f%name)//''' as in?'
      else if (nfound > 1) then
         msg = 'field '''//trim(f%name)//''' (out, component '''//trim(rd(c)%comp)// &
               '''): several components receive it; name the peer on the receiving side'
      else if (any(rd(c)%box(1:2) /= rd(cp%dst)%box(1:2)) .or. f%nlev /= rd(cp%dst)%f(cp%dst_fld)%nlev) then
         msg = 'field '''//trim(f%name)//''': shapes disagree: component '''//trim(rd(c)%comp)//''' declares '// &
               shape_txt(rd(c)%box)//' with '//core_itoa(f%nlev)//' level(s), component '''// &
               trim(rd(cp%dst)%comp)//''' declares '//shape_txt(rd(cp%dst)%box)//' with '// &
               core_itoa(rd(cp%dst)%f(cp%dst_fld)%nlev)//' level(s) (nx x ny, nlev)'
      end if
   end subroutine pair

   subroutine check_inputs_matched(rd, first, cpl, msg)
      type(rankdefs_t), intent(in) :: rd(0:)     !< all definitions
      integer, intent(in) :: first(0:)           !< component identity per rank
      type(coupling_t), intent(in) :: cpl(:)     !< couplings found
      character(len=*), intent(inout) :: msg     !< error text, unchanged if fine
      integer :: d, g, n
      do d = 0, size(rd) - 1
         if (first(d) /= d) cycle
         do g = 1, size(rd(d)%f)
            if (rd(d)%f(g)%dir /= OBR_IN) cycle
            n = count(cpl%dst == d .and. cpl%dst_fld == g)
            if (n == 0) then
               msg = 'field '''//trim(rd(d)%f(g)%name)//''' (in, component '''//trim(rd(d)%comp)// &
                     '''): no component sends it; is the peer launched and does it define '''// &
                     trim(rd(d)%f(g)%name)//''' as out?'
            else if (n > 1) then
               msg = 'field '''//trim(rd(d)%f(g)%name)//''' (in, component '''//trim(rd(d)%comp)// &
                     '''): several components send it; name the peer on the receiving side'
            end if
            if (msg /= '') return
         end do
      end do
   end subroutine check_inputs_matched

   !> Routes of this rank's box to every rank of the peer component, in rank order.
   subroutine defs_routes(rd, me, peer_first, routes, nroutes)
      type(rankdefs_t), intent(in) :: rd(0:)     !< all definitions
      integer, intent(in) :: me                  !< this rank
      integer, intent(in) :: peer_first          !< the peer component (its first rank)
      type(route_t), allocatable, intent(out) :: routes(:)  !< overlaps with peer ranks
      integer, intent(out) :: nroutes            !< number of routes
      integer :: first(0:size(rd) - 1), r, ov(4)
      first = defs_first_ranks(rd)
      allocate (routes(count(first == peer_first)))
      nroutes = 0
      do r = 0, size(rd) - 1
         if (first(r) /= peer_first) cycle
         if (.not. overlap(rd(me)%box, rd(r)%box, ov)) cycle
         nroutes = nroutes + 1
         routes(nroutes) = route_t(r, ov(1), ov(2), ov(3), ov(4))
      end do
   end subroutine defs_routes

   logical function accepts(comp, f, other)
      character(len=*), intent(in) :: comp       !< component that declares f
      type(fdef_t), intent(in) :: f              !< its field
      character(len=*), intent(in) :: other      !< candidate peer component
      accepts = other /= comp .and. (f%peer == '' .or. f%peer == other)
   end function accepts

   !> Overlap (i0, j0, ni, nj) of two boxes; false if empty.
   logical function overlap(a, b, ov)
      integer, intent(in) :: a(6), b(6)          !< boxes: nx, ny, i0, j0, ni, nj
      integer, intent(out) :: ov(4)              !< the overlap when not empty
      ov(1) = max(a(3), b(3)); ov(2) = max(a(4), b(4))
      ov(3) = min(a(3) + a(5), b(3) + b(5)) - ov(1)
      ov(4) = min(a(4) + a(6), b(4) + b(6)) - ov(2)
      overlap = ov(3) > 0 .and. ov(4) > 0
   end function overlap

   function shape_txt(box) result(s)
      integer, intent(in) :: box(6)              !< a box; its global grid is printed
      character(len=:), allocatable :: s
      s = core_itoa(box(1))//'x'//core_itoa(box(2))
   end function shape_txt

   !> Chunks per level of a route: its rows split into the fewest pieces of at most CHUNK points
   !! (a row longer than CHUNK is one piece), as handshake.chunks_per_level.
   pure integer function route_nchunks(rt)
      type(route_t), intent(in) :: rt            !< the route
      integer :: rows
      rows = max(1, CHUNK/rt%ni)
      route_nchunks = (rt%nj + rows - 1)/rows
   end function route_nchunks

   !> Chunk c (1-based, level by level) of a route, as handshake.chunks: its level (1-based), first row
   !! (0-based, relative to the route's j0), rows, and offset of its first point in the packed route.
   pure subroutine route_chunk(rt, c, lev, row0, nrows, offset)
      type(route_t), intent(in) :: rt            !< the route
      integer, intent(in) :: c                   !< the chunk, 1..route_nchunks(rt)*nlev
      integer, intent(out) :: lev                !< its level, 1-based
      integer, intent(out) :: row0, nrows        !< its rows: first (0-based in the route) and count
      integer, intent(out) :: offset             !< 0-based index of its first point in the packed route
      integer :: per, p
      per = route_nchunks(rt)
      lev = (c - 1)/per + 1
      p = mod(c - 1, per)
      nrows = rt%nj/per + merge(1, 0, p < mod(rt%nj, per))   ! the first nj mod per pieces one row longer
      row0 = p*(rt%nj/per) + min(p, mod(rt%nj, per))
      offset = ((lev - 1)*rt%nj + row0)*rt%ni
   end subroutine route_chunk

   !> True when the route spans whole rows of the local box (each chunk is then one run of its array).
   pure logical function route_whole_rows(rt, box)
      type(route_t), intent(in) :: rt            !< the route
      integer, intent(in) :: box(6)              !< this rank's box: nx, ny, i0, j0, ni, nj
      route_whole_rows = rt%ni == box(5)
   end function route_whole_rows

   !> Index in this rank's flat (ni, nj, nlev) array of the first point of chunk c of a route, and its points
   !! (its rows follow each other box(5) points apart; one run when the route spans whole rows).
   pure subroutine chunk_in_array(rt, c, box, first, npts)
      type(route_t), intent(in) :: rt            !< the route
      integer, intent(in) :: c                   !< the chunk (route_chunk)
      integer, intent(in) :: box(6)              !< this rank's box: nx, ny, i0, j0, ni, nj
      integer, intent(out) :: first              !< index in the flat array
      integer, intent(out) :: npts               !< points in the chunk
      integer :: lev, row0, nrows, offset
      call route_chunk(rt, c, lev, row0, nrows, offset)
      first = 1 + (lev - 1)*box(5)*box(6) + (rt%j0 - box(4) + row0)*box(5) + (rt%i0 - box(3))
      npts = nrows*rt%ni
   end subroutine chunk_in_array

   !> Copy chunk c of a route into the packed buffer a row by row, counting NaN/Inf on the way (one pass).
   !! (A chunk of whole rows of a contiguous array is one run: post_put copies it with one call.)
   subroutine route_pack(rt, c, origin, a, check, nbad, f2, f3)
      type(route_t), intent(in) :: rt                  !< the route (global box)
      integer, intent(in) :: c                         !< the chunk (route_chunk)
      integer, intent(in) :: origin(2)                 !< i0, j0: global offsets of the local array
      real(dp), intent(inout), contiguous :: a(:)      !< the packed route
      logical, intent(in) :: check                     !< count NaN/Inf (the NaN policy is not off)
      integer, intent(inout) :: nbad                   !< NaN/Inf values found, added to
      real(dp), intent(in), optional, target :: f2(:, :)       !< a 2-D field
      real(dp), intent(in), optional, target :: f3(:, :, :)    !< a 3-D field
      real(dp), pointer, contiguous :: row(:)
      integer :: li, lj, j, lev, row0, nrows, n
      li = rt%i0 - origin(1)
      lj = rt%j0 - origin(2)
      call route_chunk(rt, c, lev, row0, nrows, n)
      do j = lj + row0 + 1, lj + row0 + nrows
         if (present(f3)) then
            row => unit_stride(f3(li + 1:li + rt%ni, j, lev))
         else
            row => unit_stride(f2(li + 1:li + rt%ni, j))
         end if
         if (associated(row)) then
            call core_copy_count(row, a(n + 1:n + rt%ni), check, nbad)
         else if (present(f3)) then   ! a strided first dimension: the compiler packs a temporary
            call core_copy_count(f3(li + 1:li + rt%ni, j, lev), a(n + 1:n + rt%ni), check, nbad)
         else
            call core_copy_count(f2(li + 1:li + rt%ni, j), a(n + 1:n + rt%ni), check, nbad)
         end if
         n = n + rt%ni
      end do
   end subroutine route_pack

   !> A contiguous pointer to x when its elements are adjacent in memory (a row of a section of the host's
   !! halo array), else null. Passed as it is to a contiguous dummy, such a row would be copied by gfortran
   !! into a heap temporary first: a second copy and a malloc per row (measured: 2.5 % of gyre's step).
   function unit_stride(x) result(p)
      real(dp), intent(in), target :: x(:)             !< a row section
      real(dp), pointer, contiguous :: p(:)
      p => null()
      if (is_contiguous(x)) call c_f_pointer(c_loc(x), p, [size(x)])
   end function unit_stride

   !> Copy a contiguous buffer back into a route's points.
   subroutine route_unpack(rt, origin, nlev, a, f2, f3)
      type(route_t), intent(in) :: rt                  !< the route (global box)
      integer, intent(in) :: origin(2)                 !< i0, j0: global offsets of the local array
      integer, intent(in) :: nlev                      !< levels
      real(dp), intent(in) :: a(:)                     !< the buffer
      real(dp), intent(inout), optional :: f2(:, :)    !< a 2-D field
      real(dp), intent(inout), optional :: f3(:, :, :) !< a 3-D field
      integer :: li, lj, j, k, n
      li = rt%i0 - origin(1)
      lj = rt%j0 - origin(2)
      n = 0
      do k = 1, nlev
         do j = lj + 1, lj + rt%nj
            if (present(f3)) then
               f3(li + 1:li + rt%ni, j, k) = a(n + 1:n + rt%ni)
            else
               f2(li + 1:li + rt%ni, j) = a(n + 1:n + rt%ni)
            end if
            n = n + rt%ni
         end do
      end do
   end subroutine route_unpack

end module obr_mpi_defs
