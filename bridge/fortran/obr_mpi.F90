#if ! defined key_obridge_oasis
!> MPI backend of oceanbridge: components found by name in MPI_COMM_WORLD,
!! fields routed point to point between box decompositions. The sequence of
!! collectives mirrors bridge/transport/mpi.py call for call:
!!   init:   Allgather(name, 64 chars) on MPI_COMM_WORLD; Comm_split(world,
!!           first rank of that name, rank); Comm_dup(world);
!!           Comm_split_type(world, SHARED, rank), Allreduce(BOR) of the
!!           affinity masks on it, Comm_free (the wait mode: obr_mpi_wait's
!!           choose_wait_mode, which also holds every wait on MPI requests).
!!   enddef: Allgather(record length); Allgatherv(records) on the dup;
!!           Ibarrier (waited for a bounded time) before stopping on a definition error.
!! Wire protocol (PROTOCOL_VERSION, checked at enddef): a put sends per route its
!! points as chunks of whole rows of one level (route_chunk, at most CHUNK points),
!! then a trailer (step, tag, NaN/Inf count, rejected), tag = coupling index. A
!! copy-mode put packs and checks chunk k while MPI moves chunk k-1; a direct put
!! posts each chunk first and checks it while the receiver copies it.
!! Puts copy and return (a ring of core_ring buffers per field,
!! $OBRIDGE_RING, default 4), so the ocean only pays a memcpy and may run that
!! many puts ahead of a busy receiver; gets wait with the timeout.
module obr_backend
   use, intrinsic :: iso_c_binding, only: c_loc, c_f_pointer
   use obr_core
   use obr_mpi_defs
   use obr_mpi_wait
   use mpi
   implicit none
   private

   public :: backend_init, backend_def_partition, backend_def_field, backend_enddef
   public :: backend_put, backend_get, backend_finalize

   !> Contiguous message buffers for one route and one ring slot.
   type :: buf_t
      integer(i8) :: trl(TRAILER) = 0                   !< trailer: step, tag, NaN/Inf count, rejected (0/1)
      real(dp), allocatable :: a(:)                     !< packed points, chunk by chunk
   end type buf_t

   type :: field_t
      type(fdef_t) :: def                               !< name, peer, direction, levels
      integer :: tag = -1                               !< coupling index
      character(len=OBR_NAME_LEN) :: peer_comp = ''     !< the component at the other end
      type(route_t), allocatable :: routes(:)           !< overlaps with peer ranks
      integer :: nroutes = 0
      logical, allocatable :: unowned(:, :)             !< (ni, nj) in-field points no sender owns (gaps)
      type(buf_t), allocatable :: buf(:, :)             !< (route, slot) messages
      integer, allocatable :: req(:, :)                 !< (message, slot) requests
      integer, allocatable :: req_route(:)              !< route of each message
      integer, allocatable :: nmsg(:)                   !< data messages (chunks) per route
      integer, allocatable :: slot_step(:)              !< step sent from each slot
      logical, allocatable :: busy(:)                   !< slot has sends in flight
      integer :: next = 1
   end type field_t

   integer :: bcomm = MPI_COMM_NULL                     !< the bridge's dup of MPI_COMM_WORLD
   logical :: we_initialised_mpi = .false.
   integer :: mybox(6) = 0                              !< nx, ny, i0, j0, ni, nj
   logical :: mygaps = .false.                          !< this component's ranks may leave points to no rank
   logical :: has_box = .false., ended = .false.
   type(field_t), allocatable :: fields(:)
   integer :: nfields = 0

   !> Seconds a rank waits for the others before stopping on a definition error: a peer of an
   !! older protocol found nothing wrong and never joins (as mpi.py's STOP_BARRIER_LIMIT).
   real(dp), parameter :: STOP_BARRIER_LIMIT = 5._dp
   integer, parameter :: DIRECT_WINDOW = 4              !< chunks per route a direct put keeps in flight (post_put)

contains

   subroutine backend_init(name, local_comm, kinfo)
      character(len=*), intent(in) :: name       !< this component's name
      integer, intent(out) :: local_comm         !< communicator of this component's ranks
      integer, intent(out) :: kinfo              !< OBR_OK or an error code
      character(len=OBR_NAME_LEN) :: mine
      character(len=OBR_NAME_LEN), allocatable :: names(:)
      integer :: ierr, nworld, color, r, req
      logical :: flag
      kinfo = OBR_OK
      call MPI_Initialized(flag, ierr)
      if (.not. flag) then
         call MPI_Init(ierr)
         we_initialised_mpi = .true.
      end if
      call MPI_Comm_rank(MPI_COMM_WORLD, core_world_rank, ierr)
      call MPI_Comm_size(MPI_COMM_WORLD, nworld, ierr)
      core_name = name
      mine = name
      allocate (names(0:nworld - 1))
      call MPI_Iallgather(mine, OBR_NAME_LEN, MPI_CHARACTER, names, OBR_NAME_LEN, MPI_CHARACTER, MPI_COMM_WORLD, &
                          req, ierr)
      call wait_collective(req, 'init waited for the other ranks of the job; did every process of the '// &
                           'MPMD launch start and call init?', kinfo)
      if (kinfo < 0) return
      color = -1
      do r = 0, nworld - 1
         if (names(r) == mine) then
            color = r
            exit
         end if
      end do
      call MPI_Comm_split(MPI_COMM_WORLD, color, core_world_rank, local_comm, ierr)
      call MPI_Comm_dup(MPI_COMM_WORLD, bcomm, ierr)
      call choose_wait_mode()
      allocate (fields(8))
   end subroutine backend_init

   subroutine backend_def_partition(box, gaps, kinfo)
      integer, intent(in) :: box(6)              !< nx, ny, i0, j0, ni, nj (0-based offsets)
      logical, intent(in) :: gaps                !< the component's ranks may cover only part of the grid (land)
      integer, intent(out) :: kinfo              !< OBR_OK or an error code
      kinfo = OBR_OK
      mybox = box
      mygaps = gaps
      has_box = .true.
   end subroutine backend_def_partition

   subroutine backend_def_field(def, id, kinfo)
      type(fdef_t), intent(in) :: def            !< the field's definition
      integer, intent(out) :: id                 !< its handle
      integer, intent(out) :: kinfo              !< OBR_OK or an error code
      type(field_t), allocatable :: grown(:)
      kinfo = OBR_OK
      if (nfields == size(fields)) then
         allocate (grown(2*nfields))
         grown(:nfields) = fields(:nfields)
         call move_alloc(grown, fields)
      end if
      nfields = nfields + 1
      fields(nfields)%def = def
      id = nfields
   end subroutine backend_def_field

   subroutine backend_enddef(kinfo, msg)
      integer, intent(out) :: kinfo              !< OBR_OK or OBR_ERR_DEF
      character(len=*), intent(out) :: msg       !< the reason when kinfo /= OBR_OK
      type(rankdefs_t), allocatable :: rd(:)
      type(coupling_t), allocatable :: cpl(:)
      integer, allocatable :: first(:)
      integer :: ncpl, ierr, k, req, ignored
      call gather_definitions(rd, kinfo)
      if (kinfo < 0) then
         msg = core_last_error
         return
      end if
      call defs_validate(rd, cpl, ncpl, msg)
      if (msg /= '') then
         kinfo = OBR_ERR_DEF
         first = defs_first_ranks(rd)
         ! one message per component, from its first rank
         if (first(core_world_rank) == core_world_rank) call core_report('ERROR', 'end of definitions: '//trim(msg))
         call MPI_Ibarrier(bcomm, req, ierr)   ! every side prints its message before anyone aborts
         call wait_collective(req, 'end of definitions: the other side did not stop with this one', ignored, &
                              merge(min(core_timeout, STOP_BARRIER_LIMIT), core_timeout, any(rd%protocol /= PROTOCOL_VERSION)))
         kinfo = OBR_ERR_DEF
         return
      end if
      do k = 1, nfields
         call connect(fields(k), rd, cpl(:ncpl))
      end do
      ended = .true.
      kinfo = OBR_OK
   end subroutine backend_enddef

   subroutine gather_definitions(rd, kinfo)
      type(rankdefs_t), allocatable, intent(out) :: rd(:)  !< every world rank's definitions
      integer, intent(out) :: kinfo                        !< OBR_OK or OBR_ERR_TIMEOUT
      character(len=*), parameter :: msg_wait = 'end of definitions waited for the other components; '// &
                                                'did every process of the MPMD launch reach enddef? (a model '// &
                                                'built with an older oceanbridge also stops here: rerun '// &
                                                '"oceanbridge install" and rebuild it)'
      character(len=:), allocatable :: mine, everything
      integer, allocatable :: counts(:), displs(:)
      integer :: n, r, ierr, req, mylen
      mine = defs_encode(core_name, mybox, fields(:nfields)%def, nfields, mygaps)
      call MPI_Comm_size(bcomm, n, ierr)
      allocate (counts(0:n - 1), displs(0:n - 1), rd(0:n - 1))
      mylen = len(mine)
      call MPI_Iallgather(mylen, 1, MPI_INTEGER, counts, 1, MPI_INTEGER, bcomm, req, ierr)
      call wait_collective(req, msg_wait, kinfo)
      if (kinfo < 0) return
      displs(0) = 0
      do r = 1, n - 1
         displs(r) = displs(r - 1) + counts(r - 1)
      end do
      allocate (character(len=sum(counts)) :: everything)
      call MPI_Iallgatherv(mine, len(mine), MPI_CHARACTER, everything, counts, displs, MPI_CHARACTER, bcomm, &
                           req, ierr)
      call wait_collective(req, msg_wait, kinfo)
      if (kinfo < 0) return
      do r = 0, n - 1
         call defs_decode(everything(displs(r) + 1:displs(r) + counts(r)), rd(r))
      end do
   end subroutine gather_definitions

   subroutine connect(fld, rd, cpl)
      type(field_t), intent(inout) :: fld        !< a field of this component
      type(rankdefs_t), intent(in) :: rd(0:)     !< all definitions
      type(coupling_t), intent(in) :: cpl(:)     !< all couplings
      integer :: first(0:size(rd) - 1), c, k, peer, r
      first = defs_first_ranks(rd)
      k = findloc([(fld%def%name == rd(core_world_rank)%f(c)%name .and. fld%def%peer == &
                    rd(core_world_rank)%f(c)%peer, c=1, size(rd(core_world_rank)%f))], .true., 1)
      do c = 1, size(cpl)
         if (cpl(c)%src == first(core_world_rank) .and. cpl(c)%src_fld == k) peer = cpl(c)%dst
         if (cpl(c)%dst == first(core_world_rank) .and. cpl(c)%dst_fld == k) peer = cpl(c)%src
         if (cpl(c)%src == first(core_world_rank) .and. cpl(c)%src_fld == k .or. &
             cpl(c)%dst == first(core_world_rank) .and. cpl(c)%dst_fld == k) fld%tag = cpl(c)%tag
      end do
      fld%peer_comp = rd(peer)%comp
      call defs_routes(rd, core_world_rank, peer, fld%routes, fld%nroutes)
      if (fld%def%dir == OBR_IN) call defs_unowned(mybox, fld%routes(:fld%nroutes), fld%unowned)
      allocate (fld%buf(fld%nroutes, core_ring), fld%nmsg(fld%nroutes))
      allocate (fld%slot_step(core_ring), fld%busy(core_ring))
      fld%slot_step = -huge(1)
      fld%busy = .false.
      do r = 1, fld%nroutes
         fld%nmsg(r) = route_nchunks(fld%routes(r))*fld%def%nlev
      end do
      allocate (fld%req(sum(1 + fld%nmsg), core_ring), fld%req_route(sum(1 + fld%nmsg)))
      fld%req_route = 0   ! set as the messages are posted
      do r = 1, fld%nroutes
         do c = 1, core_ring
            allocate (fld%buf(r, c)%a(fld%routes(r)%ni*fld%routes(r)%nj*fld%def%nlev))
         end do
      end do
      fld%req = MPI_REQUEST_NULL
   end subroutine connect

   !> Send this rank's part of a field for a step: pack and check chunk by chunk, posting each at once;
   !! return without waiting (copy mode) or once sent (direct mode). Under the NaN policy error, a put
   !! holding NaN/Inf still completes its message, flagged rejected (the receiver's get fails naming it),
   !! then returns OBR_ERR_VALUE.
   subroutine backend_put(id, step, kinfo, msg, f2, f3)
      integer, intent(in) :: id                        !< field handle
      integer, intent(in) :: step                      !< host model step
      integer, intent(out) :: kinfo                    !< OBR_SENT or an error code
      character(len=*), intent(out) :: msg             !< the reason when kinfo < 0
      real(dp), intent(in), optional, target :: f2(:, :)       !< a 2-D field (ni, nj)
      real(dp), intent(in), optional, target :: f3(:, :, :)    !< a 3-D field (ni, nj, nlev)
      real(dp), pointer, contiguous :: flat(:)
      integer :: slot, nbad
      call check_call(id, OBR_OUT, 'put', step, kinfo, msg, f2, f3); if (kinfo < 0) return
      if (core_put_direct) then
         if (direct_possible(fields(id), f2, f3)) then
            call put_direct(fields(id), step, kinfo, msg, f2, f3)
            return
         end if
      end if
      associate (fld => fields(id))
         slot = fld%next
         call wait_slot(fld, slot, kinfo, msg); if (kinfo < 0) return
         flat => flat_of(f2, f3)   ! chunks of whole rows of a contiguous array are packed with one call
         if (associated(flat)) then
            call post_put(fld, slot, step, .false., nbad, kinfo, msg, flat, f2, f3)
         else
            call post_put(fld, slot, step, .false., nbad, kinfo, msg, f2=f2, f3=f3)
         end if
         fld%busy(slot) = .true.
         fld%slot_step(slot) = step
         fld%next = mod(slot, core_ring) + 1
         call core_nan_verdict(fld%def%name, step, nbad, kinfo, msg); if (kinfo < 0) return
      end associate
      kinfo = OBR_SENT
   end subroutine backend_put

   !> Post every chunk of a put, routes taking turns (every receiver busy from the start), then each
   !! route's trailer, which carries the NaN/Inf verdict. Copy mode packs and checks a chunk into the
   !! slot, then posts it. Direct mode posts a chunk of the caller's array first and checks it while the
   !! receiver copies it, so the check no longer delays the transfer (measured with 512 KiB chunks,
   !! bench_bridge direct/isend, 2-D field, N=2 M=1: 0.84 -> 0.95). It keeps at most DIRECT_WINDOW chunks
   !! per route in flight, so that the receiver and the check read a chunk while it is in cache (the put
   !! waits for the receiver anyway).
   subroutine post_put(fld, slot, step, direct, nbad, kinfo, msg, flat, f2, f3)
      type(field_t), intent(inout), target :: fld      !< the field
      integer, intent(in) :: slot                      !< ring slot that keeps buffers and requests
      integer, intent(in) :: step                      !< host model step, sent in the trailers
      logical, intent(in) :: direct                    !< send from flat (direct mode), else pack
      integer, intent(out) :: nbad                     !< NaN/Inf values found (0 when the policy is off)
      integer, intent(out) :: kinfo                    !< OBR_OK or OBR_ERR_TIMEOUT (direct: a chunk not taken)
      character(len=*), intent(out) :: msg             !< the reason when kinfo < 0
      real(dp), intent(in), optional, contiguous, target :: flat(:)   !< the caller's array when contiguous
      real(dp), intent(in), optional :: f2(:, :)       !< a 2-D field (copy mode: packed row by row when not flat)
      real(dp), intent(in), optional :: f3(:, :, :)    !< a 3-D field (copy mode: packed row by row when not flat)
      real(dp), pointer, contiguous :: src(:)
      integer :: n, r, m, first, npts, lev, row0, nrows, ierr, at
      logical :: check
      check = core_nan_policy /= OBR_NAN_OFF
      nbad = 0
      m = 0
      kinfo = OBR_OK
      msg = ''
      do n = 1, maxval([0, fld%nmsg])
         do r = 1, fld%nroutes
            if (n > fld%nmsg(r)) cycle
            if (direct) then
               if (m >= DIRECT_WINDOW*fld%nroutes) then
                  call wait_requests(fld, slot, 'the direct send of step '//core_itoa(step)//' did not complete to', &
                                     'is the peer alive and calling get?', kinfo, msg, m + 1 - DIRECT_WINDOW*fld%nroutes)
                  if (kinfo < 0) return
               end if
               call chunk_in_array(fld%routes(r), n, mybox, first, npts)
               first = first - 1
               src => flat
            else
               call route_chunk(fld%routes(r), n, lev, row0, nrows, first)
               npts = nrows*fld%routes(r)%ni
               src => fld%buf(r, slot)%a
               if (present(flat) .and. route_whole_rows(fld%routes(r), mybox)) then   ! one run of the array
                  call chunk_in_array(fld%routes(r), n, mybox, at, npts)
                  call core_copy_count(flat(at:at + npts - 1), src(first + 1:first + npts), check, nbad)
               else
                  call route_pack(fld%routes(r), n, mybox(3:4), src, check, nbad, f2, f3)
               end if
            end if
            m = m + 1
            fld%req_route(m) = r
            call MPI_Isend(src(first + 1), npts, MPI_REAL8, fld%routes(r)%peer, fld%tag, bcomm, fld%req(m, slot), ierr)
            if (direct .and. check) nbad = nbad + core_count_bad(flat(first + 1:first + npts))   ! read while sent
         end do
      end do
      do r = 1, fld%nroutes
         fld%buf(r, slot)%trl = [int(step, i8), int(fld%tag, i8), int(nbad, i8), &
                                 merge(1_i8, 0_i8, nbad > 0 .and. core_nan_policy == OBR_NAN_ERROR)]
         m = m + 1
         fld%req_route(m) = r
         call MPI_Isend(fld%buf(r, slot)%trl, TRAILER, MPI_INTEGER8, fld%routes(r)%peer, fld%tag, bcomm, &
                        fld%req(m, slot), ierr)
      end do
   end subroutine post_put

   !> True when every message of a put is a contiguous run of the caller's array.
   logical function direct_possible(fld, f2, f3)
      type(field_t), intent(in) :: fld                 !< the field
      real(dp), intent(in), optional :: f2(:, :)       !< a 2-D field
      real(dp), intent(in), optional :: f3(:, :, :)    !< a 3-D field
      integer :: r
      if (present(f3)) then
         direct_possible = is_contiguous(f3)
      else
         direct_possible = is_contiguous(f2)
      end if
      do r = 1, fld%nroutes
         direct_possible = direct_possible .and. route_whole_rows(fld%routes(r), mybox)
      end do
   end function direct_possible

   !> A flat view of the caller's array, or null when it is not contiguous.
   function flat_of(f2, f3) result(flat)
      real(dp), intent(in), optional, target :: f2(:, :)       !< a 2-D field
      real(dp), intent(in), optional, target :: f3(:, :, :)    !< a 3-D field
      real(dp), pointer, contiguous :: flat(:)
      flat => null()
      if (present(f3)) then
         if (is_contiguous(f3)) call c_f_pointer(c_loc(f3), flat, [size(f3)])
      else if (present(f2)) then
         if (is_contiguous(f2)) call c_f_pointer(c_loc(f2), flat, [size(f2)])
      end if
   end function flat_of

   !> Put without a copy: send straight from the caller's array, then wait until it
   !! may be reused (the direct put mode; the ocean then waits for the receiver).
   subroutine put_direct(fld, step, kinfo, msg, f2, f3)
      type(field_t), intent(inout) :: fld              !< the field
      integer, intent(in) :: step                      !< host model step
      integer, intent(out) :: kinfo                    !< OBR_SENT or an error code
      character(len=*), intent(out) :: msg             !< the reason when kinfo < 0
      real(dp), intent(in), optional, target :: f2(:, :)       !< a 2-D field (contiguous)
      real(dp), intent(in), optional, target :: f3(:, :, :)    !< a 3-D field (contiguous)
      real(dp), pointer, contiguous :: flat(:)   ! contiguous: no temporary may stand in for it (Isend)
      integer :: slot, nbad, verdict
      character(len=OBR_MSG_LEN) :: why
      slot = fld%next
      call wait_slot(fld, slot, kinfo, msg); if (kinfo < 0) return
      flat => flat_of(f2, f3)   ! direct_possible checked that the array is contiguous
      call post_put(fld, slot, step, .true., nbad, kinfo, msg, flat); if (kinfo < 0) return
      call core_nan_verdict(fld%def%name, step, nbad, verdict, why)
      call wait_requests(fld, slot, 'the direct send of step '//core_itoa(step)//' did not complete to', &
                         'is the peer alive and calling get?', kinfo, msg)
      if (kinfo < 0) return
      kinfo = OBR_SENT
      if (verdict < 0) then
         kinfo = verdict
         msg = why
      end if
   end subroutine put_direct

   !> Receive this rank's part of a field for a step, waiting at most the timeout.
   !! Chunks of routes of whole rows land straight in the array, the others are staged.
   !! A put rejected by the sender's NaN policy error is OBR_ERR_VALUE, naming the sending
   !! rank and its NaN/Inf count. After an error the array's contents are undefined.
   subroutine backend_get(id, step, kinfo, msg, f2, f3)
      integer, intent(in) :: id                        !< field handle
      integer, intent(in) :: step                      !< host model step
      integer, intent(out) :: kinfo                    !< OBR_RECVD or an error code
      character(len=*), intent(out) :: msg             !< the reason when kinfo < 0
      real(dp), intent(inout), optional, target :: f2(:, :)    !< a 2-D field (ni, nj)
      real(dp), intent(inout), optional, target :: f3(:, :, :) !< a 3-D field (ni, nj, nlev)
      real(dp), pointer, contiguous :: flat(:)
      logical :: in_place(size(fields(id)%routes))
      integer :: r, ierr, m, c, first, npts, lev, row0, nrows
      call check_call(id, OBR_IN, 'get', step, kinfo, msg, f2, f3); if (kinfo < 0) return
      flat => flat_of(f2, f3)
      associate (fld => fields(id))
         m = 0
         do r = 1, fld%nroutes
            in_place(r) = associated(flat) .and. route_whole_rows(fld%routes(r), mybox)   ! straight into the array
            do c = 1, fld%nmsg(r)
               m = m + 1
               fld%req_route(m) = r
               if (in_place(r)) then
                  call chunk_in_array(fld%routes(r), c, mybox, first, npts)
                  call MPI_Irecv(flat(first), npts, MPI_REAL8, fld%routes(r)%peer, fld%tag, bcomm, fld%req(m, 1), ierr)
               else
                  call route_chunk(fld%routes(r), c, lev, row0, nrows, first)
                  call MPI_Irecv(fld%buf(r, 1)%a(first + 1), nrows*fld%routes(r)%ni, MPI_REAL8, fld%routes(r)%peer, &
                                 fld%tag, bcomm, fld%req(m, 1), ierr)
               end if
            end do
            m = m + 1
            fld%req_route(m) = r
            call MPI_Irecv(fld%buf(r, 1)%trl, TRAILER, MPI_INTEGER8, fld%routes(r)%peer, fld%tag, bcomm, &
                           fld%req(m, 1), ierr)
         end do
         call wait_requests(fld, 1, 'get at step '//core_itoa(step)//' received nothing from', &
                            'is the peer alive and calling put?', kinfo, msg)
         if (kinfo < 0) return
         do r = 1, fld%nroutes
            call check_trailer(fld, r, step, kinfo, msg); if (kinfo < 0) return
            if (.not. in_place(r)) call route_unpack(fld%routes(r), mybox(3:4), fld%def%nlev, fld%buf(r, 1)%a, f2, f3)
         end do
         if (allocated(fld%unowned)) call fill_unowned(fld%unowned, f2, f3)
      end associate
      kinfo = OBR_RECVD
   end subroutine backend_get

   !> GAP_FILL at the points no sender owns (a peer that declared gaps), on every level.
   subroutine fill_unowned(unowned, f2, f3)
      logical, intent(in) :: unowned(:, :)                     !< (ni, nj): no sender owns the point
      real(dp), intent(inout), optional :: f2(:, :)            !< a 2-D field (ni, nj)
      real(dp), intent(inout), optional :: f3(:, :, :)         !< a 3-D field (ni, nj, nlev)
      integer :: lev
      if (present(f2)) where (unowned) f2 = GAP_FILL
      if (present(f3)) then
         do lev = 1, size(f3, 3)
            where (unowned) f3(:, :, lev) = GAP_FILL
         end do
      end if
   end subroutine fill_unowned

   !> Check the trailer received on route r: the step, and whether the sender rejected the put.
   subroutine check_trailer(fld, r, step, kinfo, msg)
      type(field_t), intent(in) :: fld                 !< the field
      integer, intent(in) :: r                         !< the route
      integer, intent(in) :: step                      !< the step the get asked for
      integer, intent(out) :: kinfo                    !< OBR_OK, OBR_ERR_USAGE or OBR_ERR_VALUE
      character(len=*), intent(out) :: msg             !< the reason when kinfo < 0
      character(len=:), allocatable :: where
      kinfo = OBR_OK
      msg = ''
      where = 'field '''//trim(fld%def%name)//''': get at step '//core_itoa(step)
      if (fld%buf(r, 1)%trl(1) /= step) then
         kinfo = OBR_ERR_USAGE
         msg = where//' received step '//core_itoa(int(fld%buf(r, 1)%trl(1)))//' from world rank '// &
               core_itoa(fld%routes(r)%peer)//' of component '''//trim(fld%peer_comp)// &
               '''; the sides call put/get at different steps'
      else if (fld%buf(r, 1)%trl(4) /= 0) then
         kinfo = OBR_ERR_VALUE
         msg = where//': the put of world rank '//core_itoa(fld%routes(r)%peer)//' of component '''// &
               trim(fld%peer_comp)//''' held '//core_itoa(int(fld%buf(r, 1)%trl(3)))//' NaN/Inf value(s) and '// &
               'was rejected (its NaN policy is error); the received array is undefined'
      end if
   end subroutine check_trailer

   !> Complete every pending send (bounded by the timeout), free the bridge's communicator.
   subroutine backend_finalize(kinfo, msg)
      integer, intent(out) :: kinfo                    !< OBR_OK or OBR_ERR_TIMEOUT
      character(len=*), intent(out) :: msg             !< the reason when kinfo < 0
      integer :: k, slot, ierr
      kinfo = OBR_OK
      msg = ''
      if (ended) then
         do k = 1, nfields
            do slot = 1, size(fields(k)%busy)
               if (kinfo == OBR_OK) call wait_slot(fields(k), slot, kinfo, msg)
            end do
         end do
      end if
      if (bcomm /= MPI_COMM_NULL) call MPI_Comm_free(bcomm, ierr)
      ended = .false.
      call core_leave_cores()
      if (we_initialised_mpi .and. kinfo == OBR_OK) call MPI_Finalize(ierr)
   end subroutine backend_finalize

   !> Reject calls before enddef, on unknown ids, in the wrong direction or with the wrong shape.
   subroutine check_call(id, dir, what, step, kinfo, msg, f2, f3)
      integer, intent(in) :: id                        !< field handle
      integer, intent(in) :: dir                       !< direction the call needs
      character(len=*), intent(in) :: what             !< 'put' or 'get'
      integer, intent(in) :: step                      !< host model step
      integer, intent(out) :: kinfo                    !< OBR_OK or OBR_ERR_USAGE
      character(len=*), intent(out) :: msg             !< the reason when kinfo < 0
      real(dp), intent(in), optional :: f2(:, :)       !< a 2-D field
      real(dp), intent(in), optional :: f3(:, :, :)    !< a 3-D field
      kinfo = OBR_ERR_USAGE
      msg = ''
      if (.not. ended) then
         msg = what//' at step '//core_itoa(step)//' before obr_enddef'
      else if (id < 1 .or. id > nfields) then
         msg = what//' at step '//core_itoa(step)//': unknown field id '//core_itoa(id)// &
               ' (ids are 1..'//core_itoa(nfields)//')'
      else
         associate (fd => fields(id)%def)
            call core_check_field(fd%name, fd%dir, fd%nlev, mybox(5:6), dir, what, kinfo, msg, f2, f3)
         end associate
      end if
   end subroutine check_call

   !> Wait until the sends of a ring slot are done, so its buffers can be reused.
   subroutine wait_slot(fld, slot, kinfo, msg)
      type(field_t), intent(inout) :: fld              !< the field
      integer, intent(in) :: slot                      !< ring slot
      integer, intent(out) :: kinfo                    !< OBR_OK or OBR_ERR_TIMEOUT
      character(len=*), intent(out) :: msg             !< the reason when kinfo < 0
      kinfo = OBR_OK
      msg = ''
      if (.not. fld%busy(slot)) return
      call wait_requests(fld, slot, 'the send of step '//core_itoa(fld%slot_step(slot))//' did not complete to', &
                         'is the peer alive and calling get?', kinfo, msg)
      if (kinfo >= 0) fld%busy(slot) = .false.
      if (kinfo >= 0) kinfo = OBR_OK
   end subroutine wait_slot

   !> Complete a slot's requests (the first `upto` of them when given; obr_mpi_wait's wait_some); at the
   !! timeout cancel every request of the slot and name the peers that did not take or deliver theirs.
   subroutine wait_requests(fld, slot, what, hint, kinfo, msg, upto)
      type(field_t), intent(inout) :: fld              !< the field
      integer, intent(in) :: slot                      !< ring slot holding the requests
      character(len=*), intent(in) :: what             !< what did not happen, for the message
      character(len=*), intent(in) :: hint             !< what to check, for the message
      integer, intent(out) :: kinfo                    !< OBR_OK or OBR_ERR_TIMEOUT
      character(len=*), intent(out) :: msg             !< the reason when kinfo < 0
      integer, intent(in), optional :: upto            !< wait only for requests 1..upto (posted first)
      integer :: n, ierr, k
      logical :: pending(size(fld%routes))
      character(len=:), allocatable :: peers
      n = size(fld%req, 1)
      if (present(upto)) n = upto
      kinfo = OBR_OK
      msg = ''
      if (wait_some(fld%req(:n, slot))) return
      pending = .false.
      do k = 1, size(fld%req, 1)
         if (fld%req(k, slot) == MPI_REQUEST_NULL) cycle
         pending(fld%req_route(k)) = .true.
         call MPI_Cancel(fld%req(k, slot), ierr)
         call MPI_Request_free(fld%req(k, slot), ierr)
      end do
      peers = ''
      do k = 1, size(pending)
         if (pending(k)) peers = peers//' '//core_itoa(fld%routes(k)%peer)
      end do
      kinfo = OBR_ERR_TIMEOUT
      write (msg, '(a,f0.1,a)') 'field '''//trim(fld%def%name)//''': '//what//' world rank(s)'//peers// &
         ' of component '''//trim(fld%peer_comp)//''' within ', core_timeout, ' s; '//hint
   end subroutine wait_requests

end module obr_backend
#endif
