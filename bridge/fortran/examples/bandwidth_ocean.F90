!> Example that doubles as the bandwidth benchmark's ocean side
!! (benchmarks/bench_bridge.py is the Python side and the driver).
!!
!! The ocean ranks split the grid in j. Each repetition runs six phases of
!! NITER exchanges of the same bytes, each between barriers, in an order that
!! rotates with the repetition (both sides compute it, see phase_order):
!!   1 raw MPI_Send / MPI_Recv, one message per pair of ranks;
!!   2 raw MPI_Isend / MPI_Irecv + Waitall, one message per pair;
!!   3 raw Isend / Irecv + Waitall, the bridge's chunks (obr_mpi_defs' route_chunk, routes taking turns);
!!   4 bridge put/get, copy put mode;   5 bridge put/get, direct put mode;
!!   6 raw buffered: the field's overlap copied into one of RING buffers per pair, then MPI_Isend, the
!!     buffer waited for only when its turn comes again (what an MPI program that must not wait for its
!!     receiver writes by hand: the copy put mode's semantics without the bridge).
!! Repetition 0 is a warm-up that the driver drops.
!! With RECEIVE = 1 the field travels the other way (the worker puts, in its put mode of the phase,
!! and the ocean gets); the raw phases then receive what the Python side sends (phase 6 as phase 2).
!! Usage: bandwidth_ocean NX NY NLEV PXW PYW NITER NREP [RECEIVE]
!!   PXW x PYW: the Python side's layout, to size the raw messages.
program bandwidth_ocean
   use obridge
   use obr_mpi_defs, only: route_t, route_nchunks
   use, intrinsic :: iso_fortran_env, only: dp => real64
   use mpi
   implicit none
   integer, parameter :: NPHASE = 6, TAG = 77
   integer, parameter :: RING = 4                !< buffers per pair of the raw buffered pattern (the bridge's default ring)
   integer :: nx, ny, nlev, pxw, pyw, niter, nrep, comm, rank, nranks, ierr, id, rep, it, q, nw, k, step
   integer :: i0, j0, ni, nj, wi0, wj0, wni, wnj, ov_i, ov_j
   integer :: order(NPHASE)
   real(dp), allocatable :: fld(:, :, :)
   type :: msg_t
      real(dp), allocatable :: a(:)
      integer :: dest = -1
      type(route_t) :: rt                        !< the overlap, to chunk it as the bridge does
      real(dp), allocatable :: ring(:, :)        !< (points, RING) buffers of the buffered pattern
      integer :: ring_req(RING) = MPI_REQUEST_NULL
   end type msg_t
   type(msg_t), allocatable, target :: raw(:)
   integer :: ring_next = 1
   logical :: receive = .false.                  !< the ocean receives (the worker -> ocean direction)

   call read_args()
   call obr_init('ocean', comm)
   call MPI_Comm_rank(comm, rank, ierr)
   call MPI_Comm_size(comm, nranks, ierr)
   i0 = 0; ni = nx
   call split(ny, nranks, rank, j0, nj)
   call obr_def_partition(nx, ny, i0, j0, ni, nj)
   call obr_def_field('f', merge(OBR_IN, OBR_OUT, receive), nlev, id)
   call obr_enddef()
   allocate (fld(ni, nj, nlev))
   call random_number(fld)

   ! raw messages: the overlap with each Python rank, as contiguous buffers
   nw = pxw*pyw
   allocate (raw(nw))
   do q = 0, nw - 1
      call split(nx, pxw, mod(q, pxw), wi0, wni)
      call split(ny, pyw, q/pxw, wj0, wnj)
      ov_i = min(i0 + ni, wi0 + wni) - max(i0, wi0)
      ov_j = min(j0 + nj, wj0 + wnj) - max(j0, wj0)
      raw(q + 1)%dest = nranks + q
      raw(q + 1)%rt = route_t(nranks + q, max(i0, wi0), max(j0, wj0), max(ov_i, 1), max(ov_j, 1))
      allocate (raw(q + 1)%a(max(ov_i, 0)*max(ov_j, 0)*nlev))
      raw(q + 1)%a = 1._dp
      allocate (raw(q + 1)%ring(size(raw(q + 1)%a), RING))
      raw(q + 1)%ring = 0._dp
   end do

   step = 0
   do rep = 0, nrep
      order = phase_order(rep)
      do k = 1, NPHASE
         call MPI_Barrier(MPI_COMM_WORLD, ierr)
         do it = 1, niter
            select case (order(k))
            case (1); call raw_send()
            case (2); call raw_isend(.false.)
            case (3); call raw_isend(.true.)
            case (6)
               if (receive) call raw_isend(.false.)
               if (.not. receive) call raw_buffered()
            case (4, 5)
               if (receive) then
                  step = step + 1
                  call obr_get(id, step, fld)
                  cycle
               end if
               call obr_set_put_mode(trim(merge('copy  ', 'direct', order(k) == 4)))
               step = step + 1
               call obr_put(id, step, fld)
            end select
         end do
         if (order(k) == 6 .and. .not. receive) call raw_buffered_drain()
         call MPI_Barrier(MPI_COMM_WORLD, ierr)
      end do
   end do
   call obr_finalize()

contains

   !> Phases 1..NPHASE rotated by the repetition, so no phase always runs first (bench_bridge.phase_order).
   pure function phase_order(r) result(o)
      integer, intent(in) :: r                   !< the repetition
      integer :: o(NPHASE), j
      o = [(mod(r + j - 1, NPHASE) + 1, j=1, NPHASE)]
   end function phase_order

   !> Raw pattern 1: a blocking MPI_Send (MPI_Recv when receiving) per Python rank.
   subroutine raw_send()
      integer :: p
      do p = 1, nw
         if (size(raw(p)%a) == 0) cycle
         if (receive) then
            call MPI_Recv(raw(p)%a, size(raw(p)%a), MPI_REAL8, raw(p)%dest, TAG, MPI_COMM_WORLD, &
                          MPI_STATUS_IGNORE, ierr)
         else
            call MPI_Send(raw(p)%a, size(raw(p)%a), MPI_REAL8, raw(p)%dest, TAG, MPI_COMM_WORLD, ierr)
         end if
      end do
   end subroutine raw_send

   !> Raw patterns 2 and 3: every message posted with MPI_Isend (MPI_Irecv when receiving), then Waitall:
   !! one per Python rank, or the bridge's chunks of each overlap (routes taking turns, as obr_mpi.F90's
   !! post_put).
   subroutine raw_isend(chunked)
      logical, intent(in) :: chunked             !< the bridge's chunks, else one message per pair
      integer, allocatable :: reqs(:)
      integer :: nreq, p, c, first, npts, nmsg(nw)
      nmsg = 0
      do p = 1, nw
         if (size(raw(p)%a) > 0) nmsg(p) = merge(route_nchunks(raw(p)%rt)*nlev, 1, chunked)
      end do
      allocate (reqs(sum(nmsg)))
      nreq = 0
      do c = 1, maxval(nmsg)
         do p = 1, nw
            if (c > nmsg(p)) cycle
            call raw_piece(p, c, chunked, first, npts)
            nreq = nreq + 1
            if (receive) then
               call MPI_Irecv(raw(p)%a(first), npts, MPI_REAL8, raw(p)%dest, TAG, MPI_COMM_WORLD, reqs(nreq), ierr)
            else
               call MPI_Isend(raw(p)%a(first), npts, MPI_REAL8, raw(p)%dest, TAG, MPI_COMM_WORLD, reqs(nreq), ierr)
            end if
         end do
      end do
      call MPI_Waitall(nreq, reqs, MPI_STATUSES_IGNORE, ierr)
   end subroutine raw_isend

   !> Raw pattern 6: per Python rank, wait for the ring buffer's previous send, copy the overlap of the
   !! field into it, MPI_Isend it; return without waiting (raw_buffered_drain completes the phase).
   subroutine raw_buffered()
      integer :: p, s
      real(dp), pointer, contiguous :: box(:, :, :)
      s = ring_next
      do p = 1, nw
         if (size(raw(p)%a) == 0) cycle
         associate (rt => raw(p)%rt)
            call MPI_Wait(raw(p)%ring_req(s), MPI_STATUS_IGNORE, ierr)
            box(1:rt%ni, 1:rt%nj, 1:nlev) => raw(p)%ring(:, s)
            box = fld(rt%i0 - i0 + 1:rt%i0 - i0 + rt%ni, rt%j0 - j0 + 1:rt%j0 - j0 + rt%nj, :)
            call MPI_Isend(raw(p)%ring(1, s), size(raw(p)%a), MPI_REAL8, raw(p)%dest, TAG, MPI_COMM_WORLD, &
                           raw(p)%ring_req(s), ierr)
         end associate
      end do
      ring_next = mod(s, RING) + 1
   end subroutine raw_buffered

   !> Complete every send of the buffered pattern, at the end of its phase.
   subroutine raw_buffered_drain()
      integer :: p
      do p = 1, nw
         call MPI_Waitall(RING, raw(p)%ring_req, MPI_STATUSES_IGNORE, ierr)
      end do
   end subroutine raw_buffered_drain

   !> Message c to Python rank p: its first index in raw(p)%a and its size.
   subroutine raw_piece(p, c, chunked, first, npts)
      use obr_mpi_defs, only: route_chunk
      integer, intent(in) :: p, c                !< the Python rank (1-based) and the message
      logical, intent(in) :: chunked             !< the bridge's chunks, else one message per pair
      integer, intent(out) :: first, npts        !< where the message starts, its points
      integer :: lev, row0, nrows
      first = 1
      npts = size(raw(p)%a)
      if (.not. chunked) return
      call route_chunk(raw(p)%rt, c, lev, row0, nrows, first)
      first = first + 1
      npts = nrows*raw(p)%rt%ni
   end subroutine raw_piece

   subroutine read_args()
      character(len=32) :: arg
      integer :: a, vals(8)
      vals(8) = 0
      do a = 1, min(8, command_argument_count())
         call get_command_argument(a, arg)
         read (arg, *) vals(a)
      end do
      nx = vals(1); ny = vals(2); nlev = vals(3); pxw = vals(4); pyw = vals(5); niter = vals(6); nrep = vals(7)
      receive = vals(8) == 1
   end subroutine read_args

   subroutine split(n, p, k, off, ext)
      integer, intent(in) :: n, p, k             !< points, parts, this part
      integer, intent(out) :: off, ext           !< its 0-based offset and extent
      ext = n/p + merge(1, 0, k < mod(n, p))
      off = k*(n/p) + min(k, mod(n, p))
   end subroutine split

end program bandwidth_ocean
